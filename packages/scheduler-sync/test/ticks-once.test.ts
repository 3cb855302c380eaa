import { closeRedis, createRedis, createRedisKeys, QUEUES, waitForRedis, type RedisKeys } from '@rps/common';
import {
  startRedisServer,
  testLogger,
  uniquePrefix,
  waitFor,
  type TestRedisServer,
} from '@rps/common/testing';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { createService, type SchedulerService } from '../src/app';
import { schedulerConfig } from './helpers';

const TICK_MS = 200;

describe('two scheduler replicas side by side', () => {
  let server: TestRedisServer;
  let keys: RedisKeys;
  const connections: Redis[] = [];
  let tickQueue: Queue;

  beforeAll(async () => {
    server = await startRedisServer();
    keys = createRedisKeys(uniquePrefix());
  });

  afterAll(async () => {
    await tickQueue?.close();
    await Promise.all(connections.map((c) => closeRedis(c)));
    await server.stop();
  });

  async function replica(name: string): Promise<SchedulerService> {
    const redis = createRedis({ url: server.url, role: 'worker', name, logger: testLogger() });
    connections.push(redis);
    await waitForRedis(redis);
    return createService({
      config: schedulerConfig({ tickMs: TICK_MS }),
      keys,
      redis,
      logger: testLogger(),
      registry: new Registry(),
    });
  }

  async function executed(service: SchedulerService, tick: string): Promise<number> {
    const values = (await service.metrics.ticks.get()).values;
    return values.filter((v) => v.labels.tick === tick).reduce((sum, v) => sum + v.value, 0);
  }

  it('when both run then every liveness and reconcile tick executes exactly once across them', async () => {
    const a = await replica('replica-a');
    const b = await replica('replica-b');
    await Promise.all([a.start(), b.start()]);
    const started = Date.now();
    await waitFor(
      'ten liveness ticks in total',
      async () => (await executed(a, 'liveness')) + (await executed(b, 'liveness')) >= 10,
      { timeoutMs: 15_000 },
    );
    await Promise.all([a.stop(), b.stop()]);
    const elapsed = Date.now() - started;

    tickQueue = new Queue(QUEUES.scheduler, { connection: connections[0]!, prefix: keys.bullPrefix });
    const finished = await tickQueue.getJobs(['completed', 'failed']);
    for (const tick of ['liveness', 'reconcile']) {
      const total = (await executed(a, tick)) + (await executed(b, tick));
      const jobs = finished.filter((j) => j.name === tick);
      // Each scheduled job was executed by one replica: executions == distinct jobs, never twice as many.
      expect(total).toBe(jobs.length);
      expect(new Set(jobs.map((j) => j.id)).size).toBe(jobs.length);
      // And the schedule is one schedule, not one per replica.
      expect(total).toBeLessThanOrEqual(Math.ceil(elapsed / TICK_MS) + 2);
    }
    expect(finished.filter((j) => j.failedReason)).toEqual([]);
  });

  it('when a replica restarts then it joins the existing schedule instead of adding one', async () => {
    const again = await replica('replica-a-restarted');
    await again.start();
    expect(await tickQueue.getJobSchedulersCount()).toBe(4);
    const schedulers = await tickQueue.getJobSchedulers();
    expect(schedulers.map((s) => s.key).sort()).toEqual(['liveness', 'reconcile', 'retention', 'sync']);
    await waitFor('a tick on the restarted replica', async () => (await executed(again, 'liveness')) >= 1, {
      timeoutMs: 5000,
    });
    await again.stop();
  });
});
