import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeRedis, createRedis, createRedisKeys, waitForRedis, type RedisKeys } from '@rps/common';
import {
  freePort,
  startRedisServer,
  testLogger,
  uniquePrefix,
  type TestRedisServer,
} from '@rps/common/testing';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { createService, type SchedulerService } from '../src/app';
import { PeerStore } from '../src/stores/peer.store';
import { schedulerConfig, SimulatedPeer } from './helpers';

describe('sync round', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let keys: RedisKeys;
  let service: SchedulerService;
  let agentAdmin: http.Server;
  let healthzCalls = 0;

  beforeAll(async () => {
    server = await startRedisServer();
    redis = createRedis({ url: server.url, role: 'worker', name: 'sync-test', logger: testLogger() });
    await waitForRedis(redis);
    keys = createRedisKeys(uniquePrefix());
    agentAdmin = http.createServer((req, res) => {
      if (req.url === '/healthz') healthzCalls++;
      res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'ok', version: '9.8.7' }));
    });
    await new Promise<void>((resolve) => agentAdmin.listen(0, '127.0.0.1', resolve));
    service = createService({
      config: schedulerConfig({ heartbeatTimeoutMs: 5000 }),
      keys,
      redis,
      logger: testLogger(),
      registry: new Registry(),
      tuning: { httpTimeoutMs: 1000 },
    });
  });

  afterAll(async () => {
    await service.stop();
    agentAdmin.closeAllConnections();
    await new Promise((resolve) => agentAdmin.close(resolve));
    await closeRedis(redis);
    await server.stop();
  });

  it('when peers are probed then answers, versions and round trips are recorded and a silent-but-heartbeating peer is half-dead', async () => {
    const { port } = agentAdmin.address() as AddressInfo;
    const healthy = new SimulatedPeer(redis, keys, 'peer-ok', `http://127.0.0.1:${port}`);
    const halfDead = new SimulatedPeer(redis, keys, 'peer-half', `http://127.0.0.1:${await freePort()}`);
    const silent = new SimulatedPeer(redis, keys, 'peer-old', `http://127.0.0.1:${await freePort()}`);
    const noAdmin = new SimulatedPeer(redis, keys, 'peer-noadmin');
    await healthy.register();
    await halfDead.register();
    await silent.register(Date.now() - 60_000); // down altogether: liveness's business, not half-dead
    await noAdmin.register();

    const summary = await service.runTick('sync');

    expect(summary).toEqual({ probed: 3, ok: 1, failed: 2, halfDead: 1, unprobed: 1 });
    expect(healthzCalls).toBe(1);
    const store = new PeerStore(redis, keys);
    const ok = await store.readSync('peer-ok');
    expect(ok).toMatchObject({ ok: true, status: 200, version: '9.8.7', halfDead: false, error: '' });
    expect(ok!.rttMs).toBeGreaterThanOrEqual(0);
    expect(ok!.rttMs).toBeLessThan(1000);
    expect(await store.readSync('peer-half')).toMatchObject({ ok: false, status: 0, halfDead: true });
    expect(await store.readSync('peer-old')).toMatchObject({ ok: false, halfDead: false });
    expect(await store.readSync('peer-noadmin')).toBeNull();
    expect((await service.metrics.peersHalfDead.get()).values[0]?.value).toBe(1);
  });
});
