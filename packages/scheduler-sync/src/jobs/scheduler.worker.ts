import { QUEUES, type RedisKeys } from '@rps/common';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { SchedulerMetrics } from '../services/scheduler.metrics';

/** The periodic ticks, one BullMQ job scheduler each (its id is the tick name). */
export const TICK_NAMES = ['liveness', 'reconcile', 'sync', 'retention'] as const;
export type TickName = (typeof TICK_NAMES)[number];

/** A tick's work: resolves with the counts its summary line logs. */
export type TickRunner = () => Promise<object>;

/** How often each tick runs (ms). */
export type TickIntervals = Record<TickName, number>;

// Finished tick jobs are useless after the fact; keep a few for `redis-cli` inspection.
const KEEP_FINISHED = { count: 50 };

/**
 * Registers (or updates) the job schedulers. Idempotent: every replica calls
 * it at start, and the schedulers live in Redis, so a restarted scheduler
 * picks up the same schedule instead of starting a second one.
 */
export async function upsertTickSchedulers(queue: Queue, intervals: TickIntervals): Promise<void> {
  for (const name of TICK_NAMES) {
    await queue.upsertJobScheduler(
      name,
      { every: intervals[name] },
      { name, data: {}, opts: { removeOnComplete: KEEP_FINISHED, removeOnFail: KEEP_FINISHED } },
    );
  }
}

export function createSchedulerQueue(connection: Redis, keys: RedisKeys): Queue {
  return new Queue(QUEUES.scheduler, { connection, prefix: keys.bullPrefix });
}

/**
 * The tick worker. BullMQ hands each scheduled job to exactly one worker, so
 * with N replicas each tick runs once; a tick that throws fails its job (the
 * next one is scheduled regardless) and counts as an error.
 */
export function createTickWorker(deps: {
  connection: Redis;
  keys: RedisKeys;
  runners: Record<TickName, TickRunner>;
  metrics: SchedulerMetrics;
  logger: Logger;
}): Worker {
  const log = deps.logger.child({ component: 'ticks' });
  const worker = new Worker(
    QUEUES.scheduler,
    async (job: Job) => {
      const name = job.name as TickName;
      const runner = (TICK_NAMES as readonly string[]).includes(name) ? deps.runners[name] : undefined;
      if (!runner) throw new UnrecoverableError(`unknown tick ${job.name}`);
      const end = deps.metrics.tickDuration.startTimer({ tick: name });
      const started = performance.now();
      try {
        const summary = await runner();
        deps.metrics.ticks.inc({ tick: name, outcome: 'ok' });
        log.info(
          { tick: name, durationMs: Math.round(performance.now() - started), ...summary },
          'tick done',
        );
        return summary;
      } catch (err) {
        deps.metrics.ticks.inc({ tick: name, outcome: 'error' });
        log.error({ tick: name, err }, 'tick failed');
        throw err;
      } finally {
        end();
      }
    },
    // Ticks of different names may overlap (a slow sync must not delay liveness).
    { connection: deps.connection, prefix: deps.keys.bullPrefix, concurrency: TICK_NAMES.length },
  );
  worker.on('error', (err) => log.error({ err }, 'tick worker error'));
  return worker;
}
