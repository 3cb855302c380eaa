import type { Processor } from 'bullmq';
import { createPushJobProcessor, type PushProcessorDeps } from '@rps/common';
import type { Logger } from 'pino';
import { PushError, type IvisPushClient } from '../services/ivis-push.client';

/**
 * The `pushes` queue processor (common's createPushJobProcessor) over the
 * agent's push client: one attempt per job attempt, since the job's own
 * attempts and backoff are the retry policy; IVIS-core's 4xx answers are final.
 */
export function createPushProcessor(
  client: IvisPushClient,
  logger: Logger,
  onGivenUp: PushProcessorDeps['onGivenUp'],
): Processor<unknown, string> {
  return createPushJobProcessor({
    sender: {
      send: async (push) => {
        if (push.kind === 'status') await client.status(push.body, 1);
        else await client.emit(push.body, 1);
      },
      isFinal: (err) => err instanceof PushError && !err.retryable,
    },
    logger: logger.child({ component: 'push-worker' }),
    onGivenUp,
  });
}
