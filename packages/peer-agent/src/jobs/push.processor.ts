import { UnrecoverableError, type Job, type Processor } from 'bullmq';
import { pushJobDataSchema } from '@rps/common';
import type { Logger } from 'pino';
import { PushError, type IvisPushClient } from '../services/ivis-push.client';

/**
 * The `pushes` queue processor: pushes the RPS itself originates (a queued run
 * stopped, a lost run failed). One attempt per job attempt: the job's own
 * attempts/backoff are the retry policy, so a failure throws. A final answer
 * of IVIS-core (4xx) or malformed data is unrecoverable.
 */
export function createPushProcessor(client: IvisPushClient, logger: Logger): Processor<unknown, string> {
  return async (job: Job<unknown>) => {
    const data = pushJobDataSchema.safeParse(job.data);
    if (!data.success) {
      logger.error({ jobId: job.id }, 'invalid push job');
      throw new UnrecoverableError('invalid push job data');
    }
    try {
      if (data.data.kind === 'status') await client.status(data.data.body, 1);
      else await client.emit(data.data.body, 1);
    } catch (err) {
      if (err instanceof PushError && !err.retryable) throw new UnrecoverableError(err.message);
      throw err;
    }
    return 'delivered';
  };
}
