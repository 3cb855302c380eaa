import { runJobDataSchema, runJobId, type RunJobData } from '@rps/common';
import type { Queue } from 'bullmq';
import type { EnsureJobOutcome, RunJobs } from '../services/ports';

/** The job name agents' workers receive on the `runs` queue. */
export const RUN_JOB_NAME = 'run';

/** {@link RunJobs} on the BullMQ `runs` queue. */
export class BullRunJobs implements RunJobs {
  constructor(private readonly queue: Queue<RunJobData>) {}

  async ensure(runId: number, execution: number): Promise<EnsureJobOutcome> {
    const jobId = runJobId(runId, execution);
    const existing = await this.queue.getJob(jobId);
    let outcome: EnsureJobOutcome = 'added';
    if (existing) {
      const state = await existing.getState();
      if (state !== 'completed' && state !== 'failed' && state !== 'unknown') return 'present';
      // A finished job with this id blocks a new one: BullMQ treats the add as a duplicate.
      // Another scheduler tick may race us here; losing the race just means the job is gone already.
      await existing.remove().catch(() => undefined);
      outcome = 'replaced';
    }
    const data = runJobDataSchema.parse({ runId, execution });
    await this.queue.add(RUN_JOB_NAME, data, { jobId });
    return outcome;
  }
}
