import {
  buildFinalPushes,
  CANCELLED_BEFORE_START_REASON,
  finalPushJobId,
  isFinalState,
  type ApplyResult,
  type OutboxEntry,
  type RunRecord,
  type RunStore,
} from '@rps/common';
import type { Logger } from 'pino';
import type { PeerStore } from '../stores/peer.store';
import type { FailurePushes, RunJobs } from './ports';

/** What happened to one run of a vanished peer. */
export type RecoveryOutcome = 'lost' | 'requeued' | 'cleared' | 'skipped';

/**
 * Takes runs away from a peer that is gone (lost, removed or unregistered):
 * a running run ends `lost` with a final RUN_FAIL pushed to IVIS-core (it may
 * have had side effects, so it is never run again), a dispatched run that
 * never started goes back to the queue. Every change is a compare-and-set
 * through RunStore, so the liveness and reconcile ticks (possibly on two
 * replicas) can both try and only one wins; the winner's final pushes are
 * written to the push outbox in that same step, so a crash right after it
 * cannot lose them.
 */
export class RunRecovery {
  private readonly log: Logger;

  constructor(
    private readonly deps: {
      runs: RunStore;
      peers: PeerStore;
      runJobs: RunJobs;
      pushes: FailurePushes;
      logger: Logger;
    },
  ) {
    this.log = deps.logger.child({ component: 'run-recovery' });
  }

  /** Recovers every run in the peer's runs set. */
  async recoverPeer(peerId: string, why: string, now: number): Promise<Record<RecoveryOutcome, number>> {
    const counts: Record<RecoveryOutcome, number> = { lost: 0, requeued: 0, cleared: 0, skipped: 0 };
    for (const runId of await this.deps.peers.runsOf(peerId)) {
      counts[await this.recoverRun(runId, peerId, why, now)]++;
    }
    return counts;
  }

  /** Recovers one run the peer holds; a run that moved on meanwhile is left alone. */
  async recoverRun(runId: number, peerId: string, why: string, now: number): Promise<RecoveryOutcome> {
    const record = await this.deps.runs.get(runId);
    if (!record || record.peerId !== peerId || isFinalState(record.state) || record.state === 'queued') {
      // Stale member of the peer's set: the run ended, moved or was deleted.
      if (peerId) await this.deps.peers.forgetRun(peerId, runId);
      return 'cleared';
    }
    if (record.state === 'running') return this.lose(record, why, now);
    return this.requeue(record, why);
  }

  /**
   * Enqueues the pushes of a run the gateway stopped before start again if
   * they never made it to the queue (the gateway's enqueue failed after its
   * compare-and-set, or it crashed in between); IVIS-core would otherwise
   * never hear of the stop.
   */
  async repairStopPush(runId: number): Promise<boolean> {
    const record = await this.deps.runs.get(runId);
    if (!record || record.state !== 'stopped' || record.reason !== CANCELLED_BEFORE_START_REASON)
      return false;
    if (await this.deps.pushes.stopExists(runId, record.execution)) return false;
    await this.deps.pushes.enqueueStop(
      runId,
      record.execution,
      record.finishedAt || new Date().toISOString(),
    );
    this.log.warn({ runId, execution: record.execution }, 'stop pushes re-enqueued');
    return true;
  }

  /**
   * Queues the final pushes of a lost run again if they are neither in the
   * outbox nor on the queue (a record written before the outbox existed, or
   * trimmed early); idempotent by job id.
   */
  async repairLostPush(runId: number): Promise<boolean> {
    const record = await this.deps.runs.get(runId);
    if (!record || record.state !== 'lost') return false;
    if (await this.deps.pushes.exists(finalPushJobId(runId, record.execution))) return false;
    await this.deps.pushes.add(await this.failurePushes(record, record.error, record.finishedAt));
    this.log.warn({ runId, execution: record.execution }, 'lost run push re-enqueued');
    return true;
  }

  /**
   * Ends a run failed (`lose`, or `fail` for one that cannot be executed)
   * with its final RUN_FAIL and fail emit recorded in the same atomic step,
   * then queues them. Every path (and every repeat) builds the same bodies.
   */
  async endFailed(
    record: RunRecord,
    event: 'lose' | 'fail',
    fields: { finishedAt: string; error: string; reason: string },
    now: number,
  ): Promise<ApplyResult> {
    const entry = await this.failurePushes(record, fields.error, fields.finishedAt);
    const result = await this.deps.runs.apply(record.runId, event, {
      ...(event === 'lose' ? { peerId: record.peerId } : {}),
      execution: record.execution,
      fields,
      now,
      outbox: entry,
      announce: true,
    });
    if (!result.ok) return result;
    try {
      await this.deps.pushes.queue(entry.jobId);
    } catch (err) {
      // In the outbox already: the next drain queues it.
      this.log.warn(
        { runId: record.runId, err: { message: (err as Error).message } },
        'final pushes not queued yet',
      );
    }
    return result;
  }

  private async lose(record: RunRecord, why: string, now: number): Promise<RecoveryOutcome> {
    const finishedAt = new Date(now).toISOString();
    const result = await this.endFailed(record, 'lose', { finishedAt, error: why, reason: why }, now);
    if (!result.ok) {
      this.log.info({ runId: record.runId, reason: result.reason }, 'run not lost: it moved on');
      return 'skipped';
    }
    this.log.warn({ runId: record.runId, peerId: record.peerId, why }, 'run lost');
    return 'lost';
  }

  private async requeue(record: RunRecord, why: string): Promise<RecoveryOutcome> {
    const result = await this.deps.runs.apply(record.runId, 'requeue', {
      peerId: record.peerId,
      execution: record.execution,
      fields: { reason: `requeued: ${why}` },
      announce: true,
    });
    if (!result.ok) {
      this.log.info({ runId: record.runId, reason: result.reason }, 'run not requeued: it moved on');
      return 'skipped';
    }
    const job = await this.deps.runJobs.ensure(record.runId, record.execution);
    this.log.info({ runId: record.runId, peerId: record.peerId, job, why }, 'run requeued');
    return 'requeued';
  }

  private async failurePushes(record: RunRecord, error: string, finishedAt: string): Promise<OutboxEntry> {
    return buildFinalPushes({
      runId: record.runId,
      execution: record.execution,
      event: 'fail',
      startedAt: record.startedAt || undefined,
      finishedAt,
      output: await this.deps.runs.output(record.runId),
      errMsg: error,
    });
  }
}
