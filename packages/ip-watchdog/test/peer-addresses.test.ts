import {
  closeRedis,
  createRedis,
  createRedisKeys,
  peerRecordToHash,
  waitForRedis,
  type RedisKeys,
} from '@rps/common';
import {
  startRedisServer,
  testLogger,
  uniquePrefix,
  waitFor,
  type TestRedisServer,
} from '@rps/common/testing';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { createService, type WatchdogService } from '../src/app';
import { PeerAddressStore } from '../src/stores/peer-address.store';
import { watchdogConfig } from './helpers';

describe('peer address changes', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let keys: RedisKeys;
  const connections: Redis[] = [];
  const events: Array<Record<string, unknown>> = [];
  let service: WatchdogService | undefined;

  const connect = async (name: string) => {
    const conn = createRedis({ url: server.url, role: 'worker', name, logger: testLogger() });
    connections.push(conn);
    await waitForRedis(conn);
    return conn;
  };

  beforeAll(async () => {
    server = await startRedisServer();
    redis = await connect('peer-test');
  });

  beforeEach(async () => {
    keys = createRedisKeys(uniquePrefix());
    events.length = 0;
    const sub = await connect('peer-events');
    await sub.subscribe(keys.peerEvents());
    sub.on('message', (_c: string, message: string) =>
      events.push(JSON.parse(message) as Record<string, unknown>),
    );
  });

  afterEach(async () => {
    await service?.stop();
    service = undefined;
  });

  afterAll(async () => {
    await Promise.all(connections.map((c) => closeRedis(c)));
    await server.stop();
  });

  async function register(id: string, address: string): Promise<void> {
    const now = Date.now();
    const record = {
      id,
      address,
      capacity: 1,
      executor: 'builtin',
      version: '',
      state: 'active' as const,
      adminUrl: '',
      registeredAt: now,
      heartbeatAt: now,
    };
    await redis.hset(keys.peer(id), peerRecordToHash(record));
    await redis.zadd(keys.peers(), now, id);
  }

  async function start(peerPollMs: number): Promise<WatchdogService> {
    service = createService({
      config: watchdogConfig({ override: '198.18.0.1', intervalMs: 60_000 }),
      keys,
      redis,
      subscriber: await connect('watchdog-sub'),
      logger: testLogger(),
      registry: new Registry(),
      tuning: { peerPollMs },
    });
    await service.start();
    return service;
  }

  const store = () =>
    new PeerAddressStore({ redis, subscriber: redis, keys, historyCap: 100, logger: testLogger() });

  it('when a heartbeat changes a peer address then one history entry and one updated event follow', async () => {
    await register('peer-1', '198.18.0.2');
    await register('peer-2', '198.18.0.20');
    const watchdog = await start(100);
    expect((await store().history('peer-1')).map((h) => h.address)).toEqual(['198.18.0.2']);

    await redis.hset(keys.peer('peer-1'), 'address', '198.18.0.3');
    await waitFor('the change recorded', async () => (await store().history('peer-1')).length === 2);
    const passes = async () => (await watchdog.checkPeersNow()).peers;
    for (let i = 0; i < 3; i++) await passes();

    expect(await store().history('peer-1')).toEqual([
      { address: '198.18.0.3', previous: '198.18.0.2', at: expect.any(Number) },
      { address: '198.18.0.2', previous: null, at: expect.any(Number) },
    ]);
    expect((await store().history('peer-2')).map((h) => h.address)).toEqual(['198.18.0.20']);
    await waitFor('the updated event', () => events.length >= 1);
    expect(events).toEqual([
      { type: 'updated', peerId: 'peer-1', address: '198.18.0.3', at: expect.any(Number) },
    ]);
  });

  it('when a peer event names a peer then its address is looked at at once, without waiting for the poll', async () => {
    await register('peer-3', '198.18.0.4');
    await start(60_000);
    await redis.hset(keys.peer('peer-3'), 'address', '198.18.0.5');
    await redis.publish(
      keys.peerEvents(),
      JSON.stringify({ type: 'joined', peerId: 'peer-3', at: Date.now() }),
    );

    await waitFor('the updated event', () => events.some((e) => e.type === 'updated'), { timeoutMs: 3000 });
    expect(events.filter((e) => e.type === 'updated')).toEqual([
      { type: 'updated', peerId: 'peer-3', address: '198.18.0.5', at: expect.any(Number) },
    ]);
    expect((await store().history('peer-3')).map((h) => h.address)).toEqual(['198.18.0.5', '198.18.0.4']);
  });
});
