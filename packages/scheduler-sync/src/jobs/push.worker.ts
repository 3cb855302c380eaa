import { pushJobDataSchema, QUEUES, type PushJobData, type RedisKeys } from '@rps/common';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { PushDelivery } from '../services/push-delivery.service';
import type { SchedulerMetrics } from '../services/scheduler.metrics';

/**
 * The `pushes` queue consumer the scheduler runs when `scheduler.trustedUrlBase`
 * is set, so RPS-originated pushes (a lost run's RUN_FAIL above all) reach
 * IVIS-core even when no agent is up to deliver them. A failed delivery
 * throws, and BullMQ retries with the job's backoff.
 */
export function createPushWorker(deps: {
  connection: Redis;
  keys: RedisKeys;
  delivery: PushDelivery;
  metrics: SchedulerMetrics;
  logger: Logger;
  concurrency?: number;
}): Worker<PushJobData> {
  const log = deps.logger.child({ component: 'push-worker' });
  const worker = new Worker<PushJobData>(
    QUEUES.pushes,
    async (job: Job<PushJobData>) => {
      const parsed = pushJobDataSchema.safeParse(job.data);
      if (!parsed.success) {
        // Another version's producer wrote something this one cannot send: retrying will not help.
        deps.metrics.pushes.inc({ kind: 'invalid', outcome: 'rejected' });
        throw new UnrecoverableError(`invalid push job data: ${parsed.error.message}`);
      }
      try {
        await deps.delivery.deliver(parsed.data);
        deps.metrics.pushes.inc({ kind: parsed.data.kind, outcome: 'delivered' });
        log.info({ jobId: job.id, kind: parsed.data.kind, attempt: job.attemptsMade + 1 }, 'push delivered');
      } catch (err) {
        deps.metrics.pushes.inc({ kind: parsed.data.kind, outcome: 'failed' });
        log.warn(
          { jobId: job.id, attempt: job.attemptsMade + 1, err: { message: (err as Error).message } },
          'push failed, will retry',
        );
        throw err;
      }
    },
    {
      connection: deps.connection,
      prefix: deps.keys.bullPrefix,
      concurrency: deps.concurrency ?? 4,
    },
  );
  worker.on('error', (err) => log.error({ err }, 'push worker error'));
  return worker;
}
