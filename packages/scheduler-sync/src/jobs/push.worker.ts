import {
  createPushJobProcessor,
  QUEUES,
  watchGivenUpPushes,
  type PushJobData,
  type RedisKeys,
} from '@rps/common';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { isFinalPushError, type PushDelivery } from '../services/push-delivery.service';
import type { SchedulerMetrics } from '../services/scheduler.metrics';

/**
 * The `pushes` queue consumer of the scheduler (run whenever it has a trusted
 * URL: `scheduler.trustedUrlBase`, or derived from `forwarder.routes.trusted`),
 * so pushes (a lost run's RUN_FAIL, final pushes of an agent that died) reach
 * IVIS-core even when no agent is up to deliver them. common's processor does
 * the work: one attempt per job attempt, sequences in order, give-ups logged
 * at error and counted.
 */
export function createPushWorker(deps: {
  connection: Redis;
  keys: RedisKeys;
  delivery: PushDelivery;
  metrics: SchedulerMetrics;
  logger: Logger;
  concurrency?: number;
  /** Lock of an active push job: a crashed scheduler's job comes back to a live worker after it. */
  lockDurationMs?: number;
}): Worker<PushJobData> {
  const log = deps.logger.child({ component: 'push-worker' });
  const onGivenUp = (kind: string) => deps.metrics.pushesGivenUp.inc({ kind });
  const processor = createPushJobProcessor({
    sender: { send: (push) => deps.delivery.deliver(push), isFinal: isFinalPushError },
    logger: log,
    onGivenUp,
    onDelivered: (kind) => deps.metrics.pushes.inc({ kind, outcome: 'delivered' }),
    onAttemptFailed: (kind) => deps.metrics.pushes.inc({ kind, outcome: 'failed' }),
  });
  const lockDuration = deps.lockDurationMs ?? 10_000;
  const worker = new Worker<PushJobData>(QUEUES.pushes, processor, {
    connection: deps.connection,
    prefix: deps.keys.bullPrefix,
    concurrency: deps.concurrency ?? 4,
    lockDuration,
    stalledInterval: Math.max(1000, Math.floor(lockDuration / 2)),
  });
  worker.on('error', (err) => log.error({ err }, 'push worker error'));
  watchGivenUpPushes(worker, { logger: log, onGivenUp });
  return worker;
}
