import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { closeRedis, createRedis, createRedisKeys, waitForRedis, type RedisKeys } from '@rps/common';
import {
  startRedisServer,
  testLogger,
  uniquePrefix,
  waitFor,
  type TestRedisServer,
} from '@rps/common/testing';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { createService, type WatchdogService, type WatchdogTuning } from '../src/app';
import { IpStore } from '../src/stores/ip.store';
import { startNotifyTarget, watchdogConfig, type NotifyTarget, type WatchdogConfig } from './helpers';

describe('public address changes', () => {
  let server: TestRedisServer;
  let keys: RedisKeys;
  let redis: Redis;
  let targets: NotifyTarget[];
  let dir: string;
  const connections: Redis[] = [];
  const running: WatchdogService[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
    redis = createRedis({ url: server.url, role: 'worker', name: 'ip-test', logger: testLogger() });
    await waitForRedis(redis);
    keys = createRedisKeys(uniquePrefix());
    targets = [await startNotifyTarget(), await startNotifyTarget()];
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-watchdog-'));
  });

  afterAll(async () => {
    await Promise.all(running.map((s) => s.stop()));
    await Promise.all(targets.map((t) => t.close()));
    await Promise.all([redis, ...connections].map((c) => closeRedis(c)));
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function replica(
    config: WatchdogConfig,
    prefixKeys = keys,
    tuning: Partial<WatchdogTuning> = {},
  ): Promise<WatchdogService> {
    const make = (name: string) =>
      createRedis({ url: server.url, role: 'worker', name, logger: testLogger() });
    const [conn, subscriber] = [make('watchdog'), make('watchdog-sub')];
    connections.push(conn, subscriber);
    const service = createService({
      config,
      keys: prefixKeys,
      redis: conn,
      subscriber,
      logger: testLogger(),
      registry: new Registry(),
      tuning: { peerPollMs: 60_000, ...tuning },
    });
    running.push(service);
    return service;
  }

  async function checks(services: WatchdogService[]): Promise<number> {
    let total = 0;
    for (const s of services)
      total += (await s.metrics.checks.get()).values.reduce((sum, v) => sum + v.value, 0);
    return total;
  }

  const ipsOf = (target: NotifyTarget) => target.hits.map((h) => h.body.ip);
  const store = () => new IpStore(redis, keys, 100);

  it('when an override is set then it wins over the source and each target is told once', async () => {
    const notify = targets.map((t) => t.url);
    const a = await replica(
      watchdogConfig({
        override: '198.18.0.5',
        source: { kind: 'command', command: 'echo 198.18.0.7' },
        notify,
      }),
    );
    await a.start();
    await waitFor('both targets notified', () => targets.every((t) => t.hits.length === 1));
    await waitFor('three more checks', async () => (await checks([a])) >= 4);
    await a.stop();

    const uuid = await redis.get(keys.instanceId());
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    for (const target of targets)
      expect(target.hits.map((h) => h.body)).toEqual([{ uuid, ip: '198.18.0.5' }]);
    expect(await store().current()).toBe('198.18.0.5');
    const history = await store().history();
    expect(history).toEqual([
      { ip: '198.18.0.5', previous: null, at: expect.any(Number), source: 'override' },
    ]);
  });

  it('when the override is dropped then two replicas reading the source notify each change exactly once', async () => {
    const file = path.join(dir, 'ip.txt');
    fs.writeFileSync(file, '198.18.0.7\n');
    const config = watchdogConfig({
      source: { kind: 'command', command: `cat ${file}` },
      notify: targets.map((t) => t.url),
    });
    const replicas = [await replica(config), await replica(config)];
    const events: string[] = [];
    const sub = createRedis({ url: server.url, role: 'worker', name: 'ip-events', logger: testLogger() });
    connections.push(sub);
    await sub.subscribe(keys.publicIpEvents());
    sub.on('message', (_c: string, message: string) => events.push(message));
    await Promise.all(replicas.map((r) => r.start()));

    await waitFor('the source address notified', () => targets.every((t) => t.hits.length === 2));
    const before = await checks(replicas);
    await waitFor('more checks on both', async () => (await checks(replicas)) >= before + 4);
    expect(targets.map(ipsOf)).toEqual([
      ['198.18.0.5', '198.18.0.7'],
      ['198.18.0.5', '198.18.0.7'],
    ]);

    fs.writeFileSync(file, '198.18.0.8\n');
    await waitFor('the next change notified', () => targets.every((t) => t.hits.length === 3));
    const after = await checks(replicas);
    await waitFor('more checks on both', async () => (await checks(replicas)) >= after + 4);
    await Promise.all(replicas.map((r) => r.notificationsIdle()));

    for (const target of targets) {
      expect(ipsOf(target)).toEqual(['198.18.0.5', '198.18.0.7', '198.18.0.8']);
      expect(new Set(target.hits.map((h) => h.body.uuid)).size).toBe(1);
    }
    const history = await store().history();
    expect(history.map((h) => [h.ip, h.previous, h.source])).toEqual([
      ['198.18.0.8', '198.18.0.7', 'command'],
      ['198.18.0.7', '198.18.0.5', 'command'],
      ['198.18.0.5', null, 'override'],
    ]);
    expect(events.map((e) => (JSON.parse(e) as { ip: string }).ip)).toEqual(['198.18.0.7', '198.18.0.8']);
  });

  it('when a change was recorded but the watchdog died before notifying then the next life tells the targets, once', async () => {
    const fresh = createRedisKeys(uniquePrefix());
    const catchUpAfterMs = 300;
    // The earlier life recorded the change and died before any notification.
    await new IpStore(redis, fresh, 100).recordIfChanged('198.18.0.42', 'override', Date.now() - 1000);
    const late = await startNotifyTarget();
    targets.push(late);
    const service = await replica(watchdogConfig({ override: '198.18.0.42', notify: [late.url] }), fresh, {
      catchUpAfterMs,
    });
    await service.start();
    await waitFor('the missed address delivered', () => late.hits.length === 1);
    // Further checks do not tell it again: the delivery is recorded.
    await new Promise((r) => setTimeout(r, 3 * catchUpAfterMs));
    await service.stop();
    expect(late.hits.map((h) => h.body.ip)).toEqual(['198.18.0.42']);
    expect(await redis.hgetall(fresh.publicIpNotified())).toEqual({
      [new URL(late.url).origin + new URL(late.url).pathname]: '198.18.0.42',
    });
  });

  it('when the source answers something that is not an address then the check fails and nothing changes', async () => {
    const bad = await replica(watchdogConfig({ source: { kind: 'command', command: 'echo not-an-ip' } }));
    expect(await bad.checkNow()).toEqual({
      outcome: 'error',
      error: expect.stringContaining('not an IP address'),
    });
    expect(await store().current()).toBe('198.18.0.8');
  });

  it('when the source is an HTTP echo URL then its trimmed answer is the address', async () => {
    const echo = http.createServer((_req, res) => res.end('198.18.0.9\n'));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(echo.address() as AddressInfo).port}/ip`;
    const otherKeys = createRedisKeys(uniquePrefix());
    const service = await replica(watchdogConfig({ source: { kind: 'http', url } }), otherKeys);
    try {
      expect(await service.checkNow()).toEqual({
        outcome: 'changed',
        ip: '198.18.0.9',
        previous: null,
        source: 'http',
      });
      expect(await service.checkNow()).toMatchObject({ outcome: 'unchanged', ip: '198.18.0.9' });
    } finally {
      await service.stop();
      echo.closeAllConnections();
      await new Promise((resolve) => echo.close(resolve));
    }
  });
});
