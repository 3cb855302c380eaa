import type { RunRecord, RunStore } from '@rps/common';
import type { Logger } from 'pino';
import type { PeerEntry, PeerStore } from '../stores/peer.store';
import type { RunIndexStore, RunSummary } from '../stores/run-index.store';
import { gonePeerReason, peerIsGone } from './liveness.service';
import type { RunJobs } from './ports';
import type { RunRecovery } from './run-recovery.service';
import { RUN_GAUGE_STATES, setByState, type SchedulerMetrics } from './scheduler.metrics';

/** The counts one reconcile tick logs. */
export interface ReconcileSummary {
  runs: number;
  jobsAdded: number;
  jobsReplaced: number;
  failed: number;
  lost: number;
  requeued: number;
  pushesRepaired: number;
  unindexed: number;
  /** Runs failed because the gateway never acknowledged their submit. */
  unacknowledged: number;
}

/** How long after a stop reconciliation still checks that its pushes were enqueued. */
export const STOP_REPAIR_HORIZON_MS = 60 * 60 * 1000;

/** The error of a run whose submit the gateway never acknowledged (IVIS-core got an error or nothing). */
export const UNACKNOWLEDGED_ERROR = 'run not accepted: its submit was never acknowledged to IVIS-core';

/** The error a queued run gets when it can no longer be executed. */
export const MISSING_REQUEST_ERROR = 'run request body is missing, the run cannot be executed';

/**
 * Reconciliation: finds runs whose record and queue state disagree and
 * repairs them, or fails them with a reason and a final push, so no run is
 * left hanging:
 * - queued for longer than the grace but without a deliverable job: the job
 *   is added again, or the run fails when its request body is gone;
 * - queued and still pending (the gateway never acknowledged the submit, so
 *   IVIS-core got an error or no answer) for longer than the grace: failed
 *   without a push, never started (IVIS-core has marked it failed itself);
 * - dispatched or running on a peer that is lost, stopped, removed or unregistered
 *   (and so out of reach of the liveness tick's per-peer sets): recovered;
 * - lost but its final pushes are neither in the push outbox nor on the
 *   queue: they are enqueued again (idempotent by job id);
 * - stopped by the gateway before start (within the last hour) but its stop
 *   pushes never reached the queue: they are enqueued again (same job ids);
 * - index entries without a record: dropped.
 */
export class ReconcileService {
  private readonly log: Logger;

  constructor(
    private readonly deps: {
      index: RunIndexStore;
      runs: RunStore;
      peers: PeerStore;
      runJobs: RunJobs;
      recovery: RunRecovery;
      metrics: SchedulerMetrics;
      /** A queued run younger than this is left alone: its job may be on the way. */
      graceMs: number;
      logger: Logger;
    },
  ) {
    this.log = deps.logger.child({ component: 'reconcile' });
  }

  async run(now = Date.now()): Promise<ReconcileSummary> {
    const summary: ReconcileSummary = {
      runs: 0,
      jobsAdded: 0,
      jobsReplaced: 0,
      failed: 0,
      lost: 0,
      requeued: 0,
      pushesRepaired: 0,
      unindexed: 0,
      unacknowledged: 0,
    };
    const peers = new Map((await this.deps.peers.list()).map((p) => [p.id, p]));
    const byState = new Map<string, number>();
    for (const run of await this.deps.index.scan()) {
      summary.runs++;
      byState.set(run.state ?? 'missing', (byState.get(run.state ?? 'missing') ?? 0) + 1);
      try {
        await this.reconcileRun(run, peers, now, summary);
      } catch (err) {
        // One bad run must not stop the round for the others; the next tick retries it.
        this.log.error({ err, runId: run.runId }, 'run reconciliation failed');
      }
    }
    setByState(this.deps.metrics.runs, byState, RUN_GAUGE_STATES);
    return summary;
  }

  private async reconcileRun(
    run: RunSummary,
    peers: Map<string, PeerEntry>,
    now: number,
    summary: ReconcileSummary,
  ): Promise<void> {
    switch (run.state) {
      case null:
        if (await this.deps.index.unindex(run.runId)) summary.unindexed++;
        return;
      case 'queued':
        if (run.changedAt <= now - this.deps.graceMs) await this.repairQueued(run.runId, now, summary);
        return;
      case 'dispatched':
      case 'running': {
        const peer = peers.get(run.peerId);
        const gone = !peer || peerIsGone(peer);
        if (!gone) return;
        const why = peer
          ? gonePeerReason(peer, now)
          : `peer ${run.peerId || '(none)'} is gone (no registration)`;
        const outcome = await this.deps.recovery.recoverRun(run.runId, run.peerId, why, now);
        if (outcome === 'lost') summary.lost++;
        if (outcome === 'requeued') summary.requeued++;
        return;
      }
      case 'stopped':
        // Only recent stops: a lost enqueue is repaired on the first tick
        // after the grace, and older stopped runs are not re-read every tick.
        if (
          run.changedAt <= now - this.deps.graceMs &&
          run.changedAt > now - STOP_REPAIR_HORIZON_MS &&
          (await this.deps.recovery.repairStopPush(run.runId))
        ) {
          summary.pushesRepaired++;
        }
        return;
      case 'lost':
        if (
          run.changedAt <= now - this.deps.graceMs &&
          (await this.deps.recovery.repairLostPush(run.runId))
        ) {
          summary.pushesRepaired++;
        }
        return;
      default:
        return;
    }
  }

  private async repairQueued(runId: number, now: number, summary: ReconcileSummary): Promise<void> {
    // Re-read: the scan is a snapshot and an agent may have taken the run since.
    const record = await this.deps.runs.get(runId);
    if (record?.state !== 'queued') return;
    if (record.pendingSince !== '') {
      await this.failUnacknowledged(runId, record.execution, now, summary);
      return;
    }
    if (!(await this.deps.index.hasRequest(runId))) {
      await this.failQueued(record, now, summary);
      return;
    }
    const outcome = await this.deps.runJobs.ensure(runId, record.execution);
    if (outcome === 'added') summary.jobsAdded++;
    if (outcome === 'replaced') summary.jobsReplaced++;
    if (outcome !== 'present')
      this.log.warn({ runId, execution: record.execution, outcome }, 'run job repaired');
  }

  private async failUnacknowledged(runId: number, execution: number, now: number, summary: ReconcileSummary) {
    // Pending age on Redis's clock: a retried POST restarts it, and then the run is left alone.
    const failed = await this.deps.runs.failPending(runId, execution, {
      minPendingMs: this.deps.graceMs,
      error: UNACKNOWLEDGED_ERROR,
      reason: `reconcile: ${UNACKNOWLEDGED_ERROR}`,
      now,
    });
    if (!failed) return;
    summary.unacknowledged++;
    this.log.warn({ runId, execution }, 'unacknowledged run failed: it never starts');
  }

  private async failQueued(record: RunRecord, now: number, summary: ReconcileSummary) {
    const { runId, execution } = record;
    const finishedAt = new Date(now).toISOString();
    const fields = {
      finishedAt,
      error: MISSING_REQUEST_ERROR,
      reason: `reconcile: ${MISSING_REQUEST_ERROR}`,
    };
    const result = await this.deps.recovery.endFailed(record, 'fail', fields, now);
    if (!result.ok) return;
    summary.failed++;
    this.log.warn({ runId, execution }, 'queued run failed: request body missing');
  }
}
