import { closeRedis, createRedis, createRedisKeys, waitForRedis } from '@rps/common';
import {
  freePort,
  startRedisServer,
  testLogger,
  uniquePrefix,
  waitFor,
  type TestRedisServer,
} from '@rps/common/testing';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { createService } from '../src/app';
import type { NotificationResult } from '../src/services/notifier.service';
import { startNotifyTarget, watchdogConfig, type NotifyTarget } from './helpers';

describe('notification targets that fail', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let subscriber: Redis;
  const targets: NotifyTarget[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
    redis = createRedis({ url: server.url, role: 'worker', name: 'notify-test', logger: testLogger() });
    subscriber = createRedis({ url: server.url, role: 'worker', name: 'notify-sub', logger: testLogger() });
    await waitForRedis(redis);
  });

  afterAll(async () => {
    await Promise.all(targets.map((t) => t.close()));
    await Promise.all([closeRedis(redis), closeRedis(subscriber)]);
    await server.stop();
  });

  it('when one target answers 500 and another is down then both are retried and neither delays the healthy one or the checks', async () => {
    const healthy = await startNotifyTarget();
    const flaky = await startNotifyTarget(2); // 500, 500, then 200
    targets.push(healthy, flaky);
    const down = `http://127.0.0.1:${await freePort()}/rps/ip`; // nothing listens there
    const results: Array<NotificationResult & { checksSoFar: number }> = [];
    const service = createService({
      config: watchdogConfig({
        override: '198.18.0.7',
        notify: [down, flaky.url, healthy.url],
        intervalMs: 100,
      }),
      keys: createRedisKeys(uniquePrefix()),
      redis,
      subscriber,
      logger: testLogger(),
      registry: new Registry(),
      tuning: { notifyRetry: { attempts: 4, baseDelayMs: 150, maxDelayMs: 1000 }, peerPollMs: 60_000 },
      onNotification: (result) => results.push({ ...result, checksSoFar: checksDone() }),
    });
    let checks = 0;
    const checksDone = () => checks;
    const counter = setInterval(() => {
      void service.metrics.checks.get().then((m) => (checks = m.values.reduce((sum, v) => sum + v.value, 0)));
    }, 20);
    try {
      await service.start();
      await waitFor('every target settled', () => results.length === 3, { timeoutMs: 10_000 });
    } finally {
      clearInterval(counter);
      await service.stop();
    }

    const byTarget = new Map(results.map((r) => [r.target, r]));
    expect(byTarget.get(healthy.url)).toMatchObject({ outcome: 'delivered', attempts: 1 });
    expect(byTarget.get(flaky.url)).toMatchObject({ outcome: 'delivered', attempts: 3 });
    expect(byTarget.get(down)).toMatchObject({ outcome: 'gave_up', attempts: 4 });
    expect(flaky.hits.map((h) => h.status)).toEqual([500, 500, 200]);
    expect(healthy.hits.map((h) => h.body.ip)).toEqual(['198.18.0.7']);
    // The healthy target was told before the flaky one was even retried, and before the dead one was given up.
    expect(healthy.hits[0]!.at).toBeLessThanOrEqual(flaky.hits[1]!.at);
    expect(byTarget.get(healthy.url)!.at).toBeLessThanOrEqual(byTarget.get(down)!.at);
    expect(results[0]!.target).toBe(healthy.url);
    // Checks went on while the dead target was being retried.
    expect(byTarget.get(down)!.checksSoFar).toBeGreaterThanOrEqual(3);
  });
});
