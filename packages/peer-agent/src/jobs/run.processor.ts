import { WaitingError, type Job, type Processor } from 'bullmq';
import { runJobDataSchema } from '@rps/common';
import type { Logger } from 'pino';
import type { ProcessOutcome, RunLifecycle } from '../services/run-lifecycle.service';
import type { RunMarks, RunTimings } from '../services/run-timings';

/** The run processor and what BullMQ's `completed` event of its jobs must call. */
export interface RunProcessor {
  process: Processor<unknown, ProcessOutcome | 'invalid'>;
  /** The job is completed (its slot free): its timings are recorded. */
  completed(jobId: string | undefined): void;
}

/**
 * The `runs` queue processor. Job data comes from another deployable, so it is
 * validated here; a malformed job cannot become valid by retrying, so it
 * completes (logged) instead of failing into a retry loop.
 */
export function createRunProcessor(
  lifecycle: RunLifecycle,
  intake: { accepting(): boolean },
  logger: Logger,
  timings: RunTimings,
): RunProcessor {
  // Marks of the runs processed and not completed yet, by job id.
  const inHand = new Map<string, RunMarks>();
  const process = async (job: Job<unknown>, token?: string) => {
    const marks = timings.begin(job.timestamp);
    marks.mark('queue');
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
    const outcome = await lifecycle.process(data.data, marks);
    // Timed: runs this agent ended (skipped, requeued and abandoned ones say nothing of dispatch).
    const ended = outcome === 'succeeded' || outcome === 'failed' || outcome === 'stopped';
    if (ended && job.id !== undefined) inHand.set(job.id, marks);
    if (outcome === 'requeued') {
      // The agent is going away before the run started: hand the job to the next agent now
      // instead of after the lock expires.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    return outcome;
  };
  return {
    process,
    completed: (jobId) => {
      const marks = jobId === undefined ? undefined : inHand.get(jobId);
      if (!marks || jobId === undefined) return;
      inHand.delete(jobId);
      marks.mark('release');
      timings.finish(marks);
    },
  };
}
