import {
  appError,
  redisUnavailableError,
  redisUnavailableReason,
  type Logger,
  type RunStore,
  type SubmitResult,
} from '@rps/common';
import type { ConnectionStore } from '../stores/connection.store';
import type { RunAckStore } from '../stores/run-ack.store';
import type { RunSubmitStore } from '../stores/run-submit.store';
import type { StagedRunBody } from '../stores/run-upload.store';

/** What {@link RunSubmitter} is built from. */
export interface RunSubmitterDeps {
  runs: RunStore;
  /** Record and queue job in one step. */
  submits: RunSubmitStore;
  /** The acknowledgement that makes a pending submit startable (and announces it). */
  acks: RunAckStore;
  connection: ConnectionStore;
  logger: Logger;
  /**
   * How long after a POST arrived the gateway may still accept it: IVIS-core
   * gives up after 2 s (ivis-protocol.md 1.1), so this keeps a margin.
   */
  budgetMs: number;
}

/** Past the budget, an acknowledgement already sent still gets this long to answer. */
export const ACK_REPLY_GRACE_MS = 200;
/** Shortest pause between two tries, so a flapping connection is not hammered. */
const RETRY_PAUSE_MS = 20;
/** How long an abandoned submit may take to settle, or the connection to return, for the undo. */
const UNDO_WAIT_MS = 5000;

const ERROR_OF_UNACCEPTED = 'run not accepted';

class Abandoned extends Error {}

/** What one POST knows about its submit, shared by its tries and its undo. */
interface SubmitState {
  /** Set once the POST answers with an error: a try still under way stops at its next step. */
  abandoned: boolean;
  /** The execution the submit left pending (reply seen), until acknowledged. */
  pending: number | null;
  /** A submit was sent whose reply never came: it may have committed. */
  unknown: boolean;
}

/**
 * One POST's way to an honest answer. The record is written as *pending*
 * together with its job (one script, one round trip, shared with the POSTs
 * that arrive at the same time: see GroupCommit), and the execution
 * acknowledged (made startable) as the last step before the 200 (batched
 * the same way); agents never start a pending run. When Redis drops
 * the connection on the way, the whole (idempotent) sequence is tried again
 * as soon as the connection is back, until the budget runs out: a write that
 * committed but whose reply was lost then answers 200 as `existing`. When
 * the answer is an error, the pending run is failed (here if Redis lets us,
 * else by scheduler-sync's reconciliation), so it never starts.
 */
export class RunSubmitter {
  constructor(private readonly deps: RunSubmitterDeps) {}

  async submit(
    runId: number,
    raw: Buffer | StagedRunBody,
    meta: { taskId: number; jobId: number },
    arrivedAt: number,
  ): Promise<SubmitResult> {
    // Strict, even when the upload alone used up the budget: IVIS-core has given up by then.
    const deadline = arrivedAt + this.deps.budgetMs;
    const state: SubmitState = { abandoned: false, pending: null, unknown: false };
    for (;;) {
      const attempt = this.attempt(runId, raw, meta, deadline, state);
      try {
        return await raceDeadline(attempt, deadline + ACK_REPLY_GRACE_MS);
      } catch (err) {
        const retry =
          redisUnavailableReason(err) === 'connection' &&
          Date.now() + RETRY_PAUSE_MS < deadline &&
          (await this.pauseUntilReady(deadline));
        if (retry) continue;
        state.abandoned = true;
        if (err instanceof DeadlineError) {
          // The attempt is still under way (Redis hangs): undo once it settles.
          void this.undoWhenSettled(runId, attempt, state, err);
        } else {
          await this.undo(runId, state, err);
        }
        throw this.answerFor(err);
      }
    }
  }

  private async attempt(
    runId: number,
    raw: Buffer | StagedRunBody,
    meta: { taskId: number; jobId: number },
    deadline: number,
    state: SubmitState,
  ): Promise<SubmitResult> {
    state.unknown = state.pending === null;
    // Record (pending), body and queue job in one script (run-submit-enqueue-n.lua, batched).
    const result = await this.deps.submits.submitAndEnqueue(runId, raw, meta);
    state.unknown = false;
    const submittedAt = Date.now();
    if (result.pending) state.pending = result.execution;
    if (!result.pending) return result;
    if (state.abandoned) throw new Abandoned();
    // Redis measures from the moment it recorded the submit, which is no
    // later than `submittedAt`: an acknowledgement it accepts executed before `deadline`.
    // A new execution is announced (`queued`) by the acknowledgement's script.
    const event =
      result.outcome === 'existing'
        ? null
        : { runId, execution: result.execution, state: 'queued' as const, peerId: '', at: submittedAt };
    const ack = await this.deps.acks.acknowledge(runId, result.execution, deadline - submittedAt, event);
    if (ack === 'acked') {
      state.pending = null;
      return result;
    }
    if (ack === 'late') {
      throw appError('redis_unavailable', 'Redis answered too slowly to accept the run in time', [
        { path: 'redis', message: 'timeout' },
      ]);
    }
    throw appError('run_busy', `run ${runId} changed while it was being submitted (${ack}); try again`);
  }

  private async pauseUntilReady(deadline: number): Promise<boolean> {
    await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
    return this.deps.connection.whenReady(deadline - Date.now());
  }

  private answerFor(err: unknown): unknown {
    if (err instanceof DeadlineError) {
      return appError('redis_unavailable', 'Redis did not answer within the submit budget', [
        { path: 'redis', message: 'timeout' },
      ]);
    }
    return redisUnavailableError(err) ?? err;
  }

  /**
   * After an error answer: fail the execution this POST left pending, so it
   * never starts. If Redis does not take that now, it is tried once more
   * when the connection is back; failing that too, the run stays pending
   * and reconciliation fails it after its grace.
   */
  private async undo(runId: number, state: SubmitState, cause: unknown): Promise<void> {
    const error = `${ERROR_OF_UNACCEPTED}: ${cause instanceof Error ? cause.message : String(cause)}`;
    const fail = async () => {
      // A submit whose reply never came may have committed: its execution is
      // whatever is pending now (IVIS-core sends one POST per run at a time).
      const execution = state.unknown ? await this.pendingExecution(runId) : state.pending;
      if (execution === null) return;
      const failed = await this.deps.runs.failPending(runId, execution, {
        error,
        reason: 'gateway: submit answered with an error',
      });
      this.deps.logger.warn({ runId, execution, failed, error }, 'unaccepted run failed');
    };
    if (!state.unknown && state.pending === null) return;
    try {
      await fail();
    } catch {
      void (async () => {
        if (await this.deps.connection.whenReady(UNDO_WAIT_MS)) await fail();
        else throw new Error('no connection');
      })().catch((err: unknown) =>
        this.deps.logger.warn({ err, runId }, 'unaccepted run left pending: reconciliation fails it'),
      );
    }
  }

  private async pendingExecution(runId: number): Promise<number | null> {
    const record = await this.deps.runs.get(runId);
    return record?.state === 'queued' && record.pendingSince !== '' ? record.execution : null;
  }

  private async undoWhenSettled(
    runId: number,
    attempt: Promise<unknown>,
    state: SubmitState,
    cause: unknown,
  ): Promise<void> {
    await raceDeadline(attempt, Date.now() + UNDO_WAIT_MS).catch(() => undefined);
    await this.undo(runId, state, cause);
  }
}

class DeadlineError extends Error {}

/** Settles like `promise`, or rejects with a {@link DeadlineError} at `deadline` (epoch ms). */
function raceDeadline<T>(promise: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError('deadline')), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
