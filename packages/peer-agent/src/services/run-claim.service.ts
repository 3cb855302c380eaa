import type { ApplyResult, RunJobData, RunRecord } from '@rps/common';
import type { Logger } from 'pino';
import type { RunLedger } from '../stores/run-ledger.store';
import type { AckWatch } from '../stores/submit-acks.store';

/** The outcome of claiming a run job. */
export type Claim =
  | { ok: true }
  | {
      ok: false;
      reason: string;
      /** A run this peer started in an earlier life and that nobody has closed: fail it, never re-run it. */
      orphan?: RunRecord;
    };

/**
 * How long a claim waits for the gateway to acknowledge a pending submit.
 * The gateway acknowledges within its submit budget (1.5 s after the POST
 * arrived) or never; a run still pending after this is left to
 * reconciliation, which fails it (IVIS-core got an error for it).
 */
export const SUBMIT_ACK_WAIT_MS = 2500;
/**
 * Pauses between two looks at a pending run. The gateway acknowledges right
 * after adding the job (one round trip later), so the first looks come soon.
 * A claim that listens for the acknowledgement (RunLedger.acks) is woken by
 * it, so its pauses are only the fallback for a missed message and grow
 * further; one that cannot listen polls at most 10 ms apart (a fixed 10 ms
 * once made nearly every dispatch wait 10 ms for nothing).
 */
const ACK_POLL_FIRST_MS = 1;
const ACK_POLL_MAX_MS = 10;
const ACK_POLL_MAX_LISTENING_MS = 100;

/**
 * `dispatch` of the run's execution, retried while it is pending (its submit
 * not yet acknowledged by the gateway): one script does the look and the
 * compare-and-set (RunLedger.claim), and the next look comes when the
 * acknowledgement is published or the pause is over. `pending` once
 * `waitMs` has passed.
 */
async function dispatchAcknowledged(
  ledger: RunLedger,
  data: RunJobData,
  peerId: string,
  waitMs: number,
): Promise<ApplyResult | 'pending'> {
  const until = Date.now() + waitMs;
  const maxPause = ledger.acks.listening ? ACK_POLL_MAX_LISTENING_MS : ACK_POLL_MAX_MS;
  let pause = ACK_POLL_FIRST_MS;
  let watch: AckWatch | undefined;
  try {
    for (;;) {
      const result = await ledger.claim(data.runId, data.execution, peerId);
      const left = until - Date.now();
      if (result !== 'pending' || left <= 0) return result;
      watch ??= ledger.acks.watch(data.runId);
      await watch.wake(Math.min(pause, left));
      pause = Math.min(maxPause, pause * 2);
    }
  } finally {
    watch?.close();
  }
}

/**
 * Takes a run for this peer with the state machine's compare-and-set, so a
 * run is dispatched to one peer at a time and started at most once.
 *
 * BullMQ re-delivers a job whose worker stopped renewing its lock (the agent
 * died, or lost Redis for longer than the lock). The record then still says
 * `dispatched` by the old owner; `dispatch` only applies to queued runs, so
 * the claim first puts it back with `requeue` (which insists on the old owner,
 * so two agents cannot both take it over) and then dispatches it here. If the
 * old owner was in fact alive, its own `start` now fails because the record
 * names another peer: the run still starts once. A re-delivered job whose run
 * is `running` is never run again: if it was started by this peer in an
 * earlier life the caller fails it; another peer's run is left to that peer
 * or, when it is dead, to scheduler-sync's liveness check (`lose`). A run
 * whose submit the gateway has not acknowledged is not taken (see
 * {@link SUBMIT_ACK_WAIT_MS}): IVIS-core may have been told it failed.
 */
export async function claimRun(
  ledger: RunLedger,
  data: RunJobData,
  peerId: string,
  logger: Logger,
  ackWaitMs = SUBMIT_ACK_WAIT_MS,
  onAcknowledged?: () => void,
): Promise<Claim> {
  const { runId, execution } = data;
  const first = await dispatchAcknowledged(ledger, data, peerId, ackWaitMs);
  if (first === 'pending') {
    return { ok: false, reason: 'submit never acknowledged by the gateway; reconciliation fails it' };
  }
  onAcknowledged?.();
  if (first.ok) return { ok: true };
  if (first.state !== 'dispatched' && first.state !== 'running') return { ok: false, reason: first.reason };
  const record = await ledger.get(runId);
  if (!record || record.execution !== execution) return { ok: false, reason: 'another execution of the run' };
  if (record.state === 'running') {
    if (record.peerId === peerId)
      return { ok: false, reason: 'started in an earlier life of this agent', orphan: record };
    return { ok: false, reason: `running on ${record.peerId}; liveness decides if that peer is gone` };
  }
  if (record.state !== 'dispatched') return { ok: false, reason: `run is ${record.state}` };
  const requeued = await ledger.apply(runId, 'requeue', { execution, peerId: record.peerId });
  if (!requeued.ok) return { ok: false, reason: requeued.reason };
  logger.warn(
    { runId, execution, previousPeer: record.peerId },
    'took over a dispatched run whose job was re-delivered',
  );
  const again = await ledger.apply(runId, 'dispatch', { execution, peerId });
  return again.ok ? { ok: true } : { ok: false, reason: again.reason };
}
