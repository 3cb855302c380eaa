import type { Queue } from 'bullmq';
import { pushJobOptions, type PushJobData } from '@rps/common';

/** One push job to add: its id makes a repeated add a no-op. */
export interface PushJob {
  jobId: string;
  data: PushJobData;
}

/** Retry policy of pushes the gateway originates. */
export interface PushRetry {
  attempts: number;
  backoffMs: number;
}

/**
 * The gateway's side of the `pushes` queue: status and emit pushes the RPS
 * itself owes IVIS-core (a run stopped before any agent started it). Agents
 * and scheduler-sync consume it and deliver through the forwarder.
 */
export class PushQueueStore {
  constructor(
    private readonly queue: Queue,
    private readonly retry: PushRetry,
  ) {}

  /** Adds the jobs in the given order, in one round trip. */
  async add(jobs: readonly PushJob[]): Promise<void> {
    await this.queue.addBulk(
      jobs.map((job) => ({
        name: job.data.kind,
        data: job.data,
        // Kept once done: see pushJobOptions.
        opts: pushJobOptions(job.jobId, this.retry),
      })),
    );
  }
}
