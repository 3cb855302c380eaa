import { closeRedis, createRedis, createRedisKeys, waitForRedis, type RedisKeys } from '@rps/common';
import { startRedisServer, testLogger, uniquePrefix, type TestRedisServer } from '@rps/common/testing';
import type { Redis } from 'ioredis';
import { PeerStore } from '../src/stores/peer.store';
import { SimulatedPeer } from './helpers';

// Issue 17 item 1: peer-mark-lost-2.lua re-checks the heartbeat score, so a
// heartbeat landing between the scheduler's read and the script's write
// wins. The race is driven deterministically: read, heartbeat, then the script.
describe('PeerStore.markLostIfSilent against a real Redis', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let keys: RedisKeys;
  let store: PeerStore;

  beforeAll(async () => {
    server = await startRedisServer();
    redis = createRedis({ url: server.url, role: 'worker', name: 'mark-lost-test', logger: testLogger() });
    await waitForRedis(redis);
  });
  beforeEach(() => {
    keys = createRedisKeys(uniquePrefix());
    store = new PeerStore(redis, keys);
  });
  afterAll(async () => {
    await closeRedis(redis);
    await server.stop();
  });

  it('when a heartbeat lands after the scheduler read a stale one then the peer is not marked lost', async () => {
    const now = Date.now();
    const peer = new SimulatedPeer(redis, keys, 'peer-a');
    await peer.register(now - 10_000);
    const [read] = await store.list();
    expect(read?.heartbeatAt).toBe(now - 10_000);
    await peer.heartbeat(now);
    expect(await store.markLostIfSilent('peer-a', now - 5000, now)).toBeNull();
    expect(await redis.hget(keys.peer('peer-a'), 'state')).toBe('active');
    expect(await redis.hget(keys.peer('peer-a'), 'lostAt')).toBeNull();
  });

  it('when the heartbeat is still stale then the peer is marked lost with its last heartbeat', async () => {
    const now = Date.now();
    const peer = new SimulatedPeer(redis, keys, 'peer-b');
    await peer.register(now - 10_000);
    expect(await store.markLostIfSilent('peer-b', now - 5000, now)).toBe(now - 10_000);
    expect(await redis.hmget(keys.peer('peer-b'), 'state', 'lostAt')).toEqual(['lost', String(now)]);
  });
});
