import {
  buildStopPushes,
  pushJobDataSchema,
  pushJobOptions,
  RemoteRunState,
  stopStatusJobId,
  type PushJobData,
} from '@rps/common';
import type { Queue } from 'bullmq';
import type { FailurePushes, FinalFailure } from '../services/ports';

/** Retry policy of pushes the scheduler enqueues (IVIS-core or the forwarder may be down for a while). */
export interface PushRetryOptions {
  attempts: number;
  /** First backoff delay; BullMQ doubles it per attempt. */
  backoffMs: number;
}

/** Job names on the `pushes` queue (consumers switch on `data.kind`, the name is for operators). */
export const PUSH_JOB_NAMES = { status: 'status', emit: 'emit' } as const;

function statusJobId(origin: string, runId: number, execution: number): string {
  return `${origin}-${runId}-${execution}`;
}

/** The RJR's failure output format (ivis-protocol.md 3.3): the error, a blank line, then the log. */
export function failureOutput(error: string, output: string): string {
  return `${error}\n\nLog:\n${output}`;
}

/**
 * {@link FailurePushes} on the BullMQ `pushes` queue. Job ids are derived
 * from the run and execution, so a repeat (two ticks, a reconciliation
 * repairing a crash between the state change and the enqueue) is a no-op.
 * Completed jobs are kept (retention trims them) because their ids are what
 * makes a repeat a no-op.
 */
export class BullFailurePushes implements FailurePushes {
  constructor(
    private readonly queue: Queue<PushJobData>,
    private readonly retry: PushRetryOptions,
  ) {}

  async enqueue(failure: FinalFailure): Promise<void> {
    const { runId, execution, error, output, finishedAt, origin } = failure;
    const status = pushJobDataSchema.parse({
      kind: 'status',
      body: {
        runId,
        status: { status: RemoteRunState.RUN_FAIL, finished_at: finishedAt },
        output: failureOutput(error, output),
      },
    });
    const emit = pushJobDataSchema.parse({ kind: 'emit', body: { type: `run/${runId}/fail`, data: error } });
    const opts = (jobId: string) => pushJobOptions(jobId, this.retry);
    const id = statusJobId(origin, runId, execution);
    // addBulk is one MULTI: both pushes or neither.
    await this.queue.addBulk([
      { name: PUSH_JOB_NAMES.status, data: status, opts: opts(id) },
      { name: PUSH_JOB_NAMES.emit, data: emit, opts: opts(`${id}-emit`) },
    ]);
  }

  async exists(origin: FinalFailure['origin'], runId: number, execution: number): Promise<boolean> {
    return (await this.queue.getJob(statusJobId(origin, runId, execution))) !== undefined;
  }

  async enqueueStop(runId: number, execution: number, finishedAt: string): Promise<void> {
    await this.queue.addBulk(
      buildStopPushes(runId, execution, finishedAt).map(({ jobId, data }) => ({
        name: PUSH_JOB_NAMES[data.kind],
        data,
        opts: pushJobOptions(jobId, this.retry),
      })),
    );
  }

  async stopExists(runId: number, execution: number): Promise<boolean> {
    return (await this.queue.getJob(stopStatusJobId(runId, execution))) !== undefined;
  }
}
