import { Queue, Worker, type Processor } from 'bullmq';
import { QUEUES, runJobId, type RedisKeys } from '@rps/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AgentOptions } from '../agent.options';

export interface WorkerFactoryOptions {
  connection: Redis;
  keys: RedisKeys;
  peerId: string;
  logger: Logger;
}

/**
 * The `runs` worker: concurrency = capacity, so BullMQ never hands this agent
 * more runs than it may execute. A short lock makes a dead agent's jobs come
 * back quickly; a high stalled count keeps a run that outlives several dead
 * agents from being failed by BullMQ (its record decides, not the job).
 */
export function createRunWorker<R>(
  processor: Processor<unknown, R>,
  capacity: number,
  options: Pick<AgentOptions, 'lockDurationMs' | 'stalledIntervalMs' | 'maxStalledCount'>,
  deps: WorkerFactoryOptions,
): Worker<unknown, R> {
  const worker = new Worker<unknown, R>(QUEUES.runs, processor, {
    connection: deps.connection,
    prefix: deps.keys.bullPrefix,
    name: deps.peerId,
    concurrency: capacity,
    autorun: false,
    lockDuration: options.lockDurationMs,
    stalledInterval: options.stalledIntervalMs,
    maxStalledCount: options.maxStalledCount,
  });
  attachListeners(worker, deps.logger.child({ component: 'run-worker' }));
  return worker;
}

/**
 * The `pushes` worker. The run worker's short lock: a push job held by an
 * agent that died comes back to a live worker (of any agent or scheduler-sync)
 * within seconds, not BullMQ's default half minute.
 */
export function createPushWorker<R>(
  processor: Processor<unknown, R>,
  concurrency: number,
  options: Pick<AgentOptions, 'lockDurationMs' | 'stalledIntervalMs'>,
  deps: WorkerFactoryOptions,
): Worker<unknown, R> {
  const worker = new Worker<unknown, R>(QUEUES.pushes, processor, {
    connection: deps.connection,
    prefix: deps.keys.bullPrefix,
    name: deps.peerId,
    concurrency,
    autorun: false,
    lockDuration: options.lockDurationMs,
    stalledInterval: options.stalledIntervalMs,
  });
  attachListeners(worker, deps.logger.child({ component: 'push-worker' }));
  return worker;
}

/** Re-adds a run's job; a no-op while the job still exists (BullMQ keeps job ids unique). */
export function createRunJobRequeuer(queue: Queue) {
  return async (runId: number, execution: number): Promise<void> => {
    await queue.add('run', { runId, execution }, { jobId: runJobId(runId, execution) });
  };
}

export function createRunQueue(deps: WorkerFactoryOptions): Queue {
  const queue = new Queue(QUEUES.runs, { connection: deps.connection, prefix: deps.keys.bullPrefix });
  queue.on('error', (err) => deps.logger.warn({ err: err.message }, 'run queue error'));
  return queue;
}

/** The `pushes` queue, for moving final pushes from the outbox onto it. */
export function createPushQueue(deps: WorkerFactoryOptions): Queue {
  const queue = new Queue(QUEUES.pushes, { connection: deps.connection, prefix: deps.keys.bullPrefix });
  queue.on('error', (err) => deps.logger.warn({ err: err.message }, 'push queue error'));
  return queue;
}

function attachListeners<R>(worker: Worker<unknown, R>, log: Logger): void {
  worker.on('error', (err) => log.warn({ err: err.message }, 'worker error'));
  worker.on('failed', (job, err) => log.warn({ jobId: job?.id, err: err.message }, 'job failed'));
  worker.on('stalled', (jobId) => log.warn({ jobId }, 'job stalled; re-delivered'));
}
