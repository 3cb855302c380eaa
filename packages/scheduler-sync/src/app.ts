import {
  DEFAULT_PUSH_RETRY,
  OutboxDrainer,
  PushOutbox,
  PeerAdmin,
  QUEUES,
  RunStore,
  type PushJobData,
  type RedisKeys,
  type RpsConfig,
  type RunJobData,
} from '@rps/common';
import { Queue, type Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { Agent } from 'undici';
import { BullFailurePushes, type PushRetryOptions } from './jobs/failure-pushes';
import { createPushWorker } from './jobs/push.worker';
import { BullRunJobs } from './jobs/run-jobs';
import {
  createSchedulerQueue,
  createTickWorker,
  upsertTickSchedulers,
  type TickIntervals,
  type TickName,
  type TickRunner,
} from './jobs/scheduler.worker';
import { LivenessService } from './services/liveness.service';
import { PushDelivery } from './services/push-delivery.service';
import { ReconcileService } from './services/reconcile.service';
import { RetentionService } from './services/retention.service';
import { RunRecovery } from './services/run-recovery.service';
import { createSchedulerMetrics, type SchedulerMetrics } from './services/scheduler.metrics';
import { SyncService } from './services/sync.service';
import { RedisOutages } from './services/redis-outages.service';
import { PeerStore } from './stores/peer.store';
import { RedisHealthStore } from './stores/redis-health.store';
import { RunIndexStore } from './stores/run-index.store';

/** Tunables that are not (yet) config keys; defaults suit production. */
export interface SchedulerTuning {
  /** Retry policy of the pushes the scheduler enqueues (its own, and the outbox entries it drains). */
  pushRetry: PushRetryOptions;
  /** How often the push outbox is drained onto the `pushes` queue (default: `scheduler.tickMs`). */
  outboxDrainMs: number;
  /** Lock of an active push job (a crashed replica's job comes back after it). */
  pushLockDurationMs: number;
  /** Per-request deadline of a push delivery and of a sync probe. */
  httpTimeoutMs: number;
  /** Retention runs this often (ms). */
  retentionEveryMs: number;
  /** The Redis outage probe pings this often (ms); a reply gap over 2 probes + 1 s is an outage. */
  redisProbeMs: number;
}

/** What {@link createService} needs; main.ts builds it, tests build their own. */
export interface SchedulerDeps {
  config: RpsConfig<'scheduler'>['scheduler'];
  keys: RedisKeys;
  /** A worker-role connection (retries forever): BullMQ and the stores share it. */
  redis: Redis;
  logger: Logger;
  registry: Registry;
  tuning?: Partial<SchedulerTuning>;
}

/** The built scheduler: nothing runs until {@link SchedulerService.start}. */
export interface SchedulerService {
  readonly metrics: SchedulerMetrics;
  /** Registers the job schedulers and starts the tick (and push) workers. */
  start(): Promise<void>;
  /** Closes workers, queues and HTTP connections; leaves the Redis connection to the caller. */
  stop(): Promise<void>;
  /** Runs one tick in this process, outside the schedule (tests, operators' one-offs). */
  runTick(name: TickName): Promise<object>;
}

/** Builds the scheduler from its dependencies without starting anything. */
export function createService(deps: SchedulerDeps): SchedulerService {
  const { config, keys, redis, logger } = deps;
  const tuning: SchedulerTuning = {
    pushRetry: DEFAULT_PUSH_RETRY,
    outboxDrainMs: config.tickMs,
    pushLockDurationMs: 10_000,
    httpTimeoutMs: 5000,
    retentionEveryMs: Math.max(config.tickMs * 12, 60_000),
    redisProbeMs: 1000,
    ...deps.tuning,
  };
  const metrics = createSchedulerMetrics(deps.registry);
  const dispatcher = new Agent({ connect: { timeout: tuning.httpTimeoutMs }, keepAliveTimeout: 4000 });
  const runsQueue = new Queue<RunJobData>(QUEUES.runs, { connection: redis, prefix: keys.bullPrefix });
  const pushesQueue = new Queue<PushJobData>(QUEUES.pushes, { connection: redis, prefix: keys.bullPrefix });
  const tickQueue = createSchedulerQueue(redis, keys);
  for (const queue of [runsQueue, pushesQueue, tickQueue] as Queue[]) {
    queue.on('error', (err) => logger.error({ err, queue: queue.name }, 'queue error'));
  }

  const runs = new RunStore(redis, keys);
  const peers = new PeerStore(redis, keys);
  const index = new RunIndexStore(redis, keys);
  const runJobs = new BullRunJobs(runsQueue);
  const outbox = new PushOutbox(redis, keys);
  const drainer = new OutboxDrainer({
    outbox,
    queue: pushesQueue,
    retry: tuning.pushRetry,
    logger: logger.child({ component: 'outbox' }),
  });
  const pushes = new BullFailurePushes({ queue: pushesQueue, outbox, drainer, retry: tuning.pushRetry });
  const recovery = new RunRecovery({ runs, peers, runJobs, pushes, logger });
  const common = { metrics, logger, peers };
  const outages = new RedisOutages({
    health: new RedisHealthStore(redis),
    probeMs: tuning.redisProbeMs,
    gapMs: 2 * tuning.redisProbeMs + 1000,
    logger: logger.child({ component: 'redis-outages' }),
  });
  const liveness = new LivenessService({
    ...common,
    recovery,
    outages,
    heartbeatTimeoutMs: config.heartbeatTimeoutMs,
  });
  const reconcile = new ReconcileService({
    ...common,
    index,
    runs,
    runJobs,
    recovery,
    graceMs: 2 * config.tickMs,
  });
  const sync = new SyncService({
    ...common,
    dispatcher,
    probeTimeoutMs: Math.min(tuning.httpTimeoutMs, config.syncIntervalMs),
    heartbeatTimeoutMs: config.heartbeatTimeoutMs,
  });
  const retention = new RetentionService({
    index,
    runs,
    peers: new PeerAdmin(redis, keys),
    queues: [runsQueue, pushesQueue],
    retentionMs: config.retentionMs,
    logger,
  });
  const runners: Record<TickName, TickRunner> = {
    liveness: () => liveness.run(),
    reconcile: () => reconcile.run(),
    sync: () => sync.run(),
    retention: () => retention.run(),
  };
  const intervals: TickIntervals = {
    liveness: config.tickMs,
    reconcile: config.tickMs,
    sync: config.syncIntervalMs,
    retention: tuning.retentionEveryMs,
  };

  const workers: Worker[] = [];
  let stopping: Promise<void> | undefined;
  return {
    metrics,
    async start() {
      await upsertTickSchedulers(tickQueue, intervals);
      outages.start();
      workers.push(createTickWorker({ connection: redis, keys, runners, metrics, logger }));
      if (config.trustedUrlBase) {
        const delivery = new PushDelivery({
          trustedUrlBase: config.trustedUrlBase,
          dispatcher,
          timeoutMs: tuning.httpTimeoutMs,
        });
        workers.push(
          createPushWorker({
            connection: redis,
            keys,
            delivery,
            metrics,
            logger,
            lockDurationMs: tuning.pushLockDurationMs,
          }),
        );
      }
      // Whether or not this replica delivers: queued, the pushes reach any live push worker.
      drainer.start(tuning.outboxDrainMs);
      logger.info({ intervals, pushes: Boolean(config.trustedUrlBase) }, 'scheduler started');
    },
    stop() {
      stopping ??= (async () => {
        await drainer.stop();
        outages.stop();
        await Promise.all(workers.splice(0).map((w) => w.close()));
        await Promise.all([runsQueue.close(), pushesQueue.close(), tickQueue.close()]);
        await dispatcher.close();
      })();
      return stopping;
    },
    runTick: (name) => runners[name](),
  };
}
