import type { Queue } from 'bullmq';
import { runJobId, type RunJobData } from '@rps/common';
import { RUN_JOB_OPTIONS } from './run-submit.store';

/** BullMQ job states the queue-depth gauge reports. */
export const QUEUE_DEPTH_STATES = ['waiting', 'prioritized', 'delayed', 'active', 'failed'] as const;
export type QueueDepthState = (typeof QUEUE_DEPTH_STATES)[number];

/**
 * The gateway's side of the `runs` queue: publish one execution of a run, take
 * back a job nobody has picked up yet, count jobs for the metrics.
 */
export class RunQueueStore {
  constructor(private readonly queue: Queue) {}

  /**
   * Adds the job of one execution. The job id is derived from run and
   * execution, so adding the same execution twice is a no-op in BullMQ: that
   * is what makes a retried POST (or a repair after a crash) safe.
   */
  async enqueue(runId: number, execution: number): Promise<void> {
    const data: RunJobData = { runId, execution };
    await this.queue.add('run', data, { ...RUN_JOB_OPTIONS, jobId: runJobId(runId, execution) });
  }

  /**
   * Removes the job of an execution if no agent holds it. Returns false when
   * there was none or it is locked by an agent; the agent's dispatch
   * compare-and-set then fails because the run is no longer queued.
   */
  async removeWaiting(runId: number, execution: number): Promise<boolean> {
    return (await this.queue.remove(runJobId(runId, execution))) === 1;
  }

  /** Job counts per state, for the queue-depth gauge. */
  async depth(): Promise<Record<QueueDepthState, number>> {
    const counts = await this.queue.getJobCounts(...QUEUE_DEPTH_STATES);
    return Object.fromEntries(QUEUE_DEPTH_STATES.map((s) => [s, counts[s] ?? 0])) as Record<
      QueueDepthState,
      number
    >;
  }
}
