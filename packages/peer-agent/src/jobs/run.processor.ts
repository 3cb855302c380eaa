import { WaitingError, type Job, type Processor } from 'bullmq';
import { runJobDataSchema } from '@rps/common';
import type { Logger } from 'pino';
import type { ProcessOutcome, RunLifecycle } from '../services/run-lifecycle.service';

/**
 * The `runs` queue processor. Job data comes from another deployable, so it is
 * validated here; a malformed job cannot become valid by retrying, so it
 * completes (logged) instead of failing into a retry loop.
 */
export function createRunProcessor(
  lifecycle: RunLifecycle,
  intake: { accepting(): boolean },
  logger: Logger,
): Processor<unknown, ProcessOutcome | 'invalid'> {
  return async (job: Job<unknown>, token?: string) => {
    if (!intake.accepting()) {
      // A paused BullMQ worker can still receive one job from a blocking fetch that was
      // already waiting; a draining agent hands it straight back, untouched.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    const data = runJobDataSchema.safeParse(job.data);
    if (!data.success) {
      logger.error(
        { jobId: job.id, issues: data.error.issues.map((i) => i.message) },
        'invalid run job dropped',
      );
      return 'invalid';
    }
    const outcome = await lifecycle.process(data.data);
    if (outcome === 'requeued') {
      // The agent is going away before the run started: hand the job to the next agent now
      // instead of after the lock expires.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    return outcome;
  };
}
