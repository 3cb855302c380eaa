import {
  buildStopPushes,
  pushJobOptions,
  stopStatusJobId,
  type OutboxDrainer,
  type OutboxEntry,
  type PushJobData,
  type PushOutbox,
  type PushRetry,
} from '@rps/common';
import type { Queue } from 'bullmq';
import type { FailurePushes } from '../services/ports';

/** Retry policy of pushes the scheduler enqueues (IVIS-core or the forwarder may be down for a while). */
export type PushRetryOptions = PushRetry;

/** Job names on the `pushes` queue (consumers switch on `data.kind`, the name is for operators). */
export const PUSH_JOB_NAMES = { status: 'status', emit: 'emit', sequence: 'sequence' } as const;

/**
 * {@link FailurePushes} on the BullMQ `pushes` queue and the push outbox.
 * Final pushes are written to the outbox with the state change (RunStore)
 * and moved to the queue under their job id; a repeat is a no-op because
 * completed jobs are kept (retention trims them).
 */
export class BullFailurePushes implements FailurePushes {
  constructor(
    private readonly deps: {
      queue: Queue<PushJobData>;
      outbox: PushOutbox;
      drainer: Pick<OutboxDrainer, 'drainOne'>;
      retry: PushRetryOptions;
    },
  ) {}

  async queue(jobId: string): Promise<void> {
    await this.deps.drainer.drainOne(jobId);
  }

  async add(entry: OutboxEntry): Promise<void> {
    await this.deps.queue.add(entry.data.kind, entry.data, pushJobOptions(entry.jobId, this.deps.retry));
  }

  async exists(jobId: string): Promise<boolean> {
    if (await this.deps.outbox.get(jobId)) return true;
    return (await this.deps.queue.getJob(jobId)) !== undefined;
  }

  async enqueueStop(runId: number, execution: number, finishedAt: string): Promise<void> {
    await this.deps.queue.addBulk(
      buildStopPushes(runId, execution, finishedAt).map(({ jobId, data }) => ({
        name: PUSH_JOB_NAMES[data.kind],
        data,
        opts: pushJobOptions(jobId, this.deps.retry),
      })),
    );
  }

  async stopExists(runId: number, execution: number): Promise<boolean> {
    return (await this.deps.queue.getJob(stopStatusJobId(runId, execution))) !== undefined;
  }
}
