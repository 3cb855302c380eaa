import { RemoteRunState } from '../runs/run-state';
import type { PushJobData } from './run.contract';

/**
 * A run stopped before any process ran (queued or dispatched) owes IVIS-core
 * the final pushes the RJR sends for it; the gateway enqueues them and
 * scheduler-sync's reconciliation re-enqueues them if that enqueue was lost.
 * Both build them here, so the job ids (which make a repeat a no-op) and the
 * bodies are the same.
 */

/** What IVIS-core shows for a run stopped before it started (the RJR's wording, ivis-protocol.md 3.3). */
export const RUN_CANCELLED_MESSAGE = 'INFO: Run Cancelled\n';

/** The run record's `reason` for such a stop: it marks the runs that owe the pushes below. */
export const CANCELLED_BEFORE_START_REASON = 'gateway: stopped before start';

/** Job id of the final status push of a run stopped before start (one per execution). */
export function stopStatusJobId(runId: number, execution: number): string {
  return `stop-${runId}-${execution}-status`;
}

/**
 * The final status push and the stop emit of a run stopped before it started,
 * in the order the RJR sends them (ivis-protocol.md 3.3). Job ids carry the
 * execution, so a repeated stop or a repair never pushes twice.
 */
export function buildStopPushes(
  runId: number,
  execution: number,
  finishedAt: string,
): Array<{ jobId: string; data: PushJobData }> {
  return [
    {
      jobId: stopStatusJobId(runId, execution),
      data: {
        kind: 'status',
        body: {
          runId,
          status: { status: RemoteRunState.RUN_FAIL, finished_at: finishedAt },
          output: RUN_CANCELLED_MESSAGE,
        },
      },
    },
    { jobId: `stop-${runId}-${execution}-emit`, data: { kind: 'emit', body: { type: `run/${runId}/stop` } } },
  ];
}
