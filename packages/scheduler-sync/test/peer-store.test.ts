import {
  closeRedis,
  createRedis,
  createRedisKeys,
  peerEventSchema,
  subscribeWhenReady,
  waitForRedis,
  type PeerEvent,
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
import { PeerStore, type PeerSyncResult } from '../src/stores/peer.store';
import { SimulatedPeer } from './helpers';

// The peer registry as liveness and the sync round read and change it: the
// peer list (batched), a peer's run ids, the sync round's probe results, and
// the mark of a silent peer (mutation testing found the reads exercised only
// in passing).
describe('PeerStore against a real Redis', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let keys: RedisKeys;
  let store: PeerStore;

  beforeAll(async () => {
    server = await startRedisServer();
    redis = createRedis({ url: server.url, role: 'worker', name: 'peer-store-test', logger: testLogger() });
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

  it('when more peers are indexed than one batch reads then every one is listed once, in heartbeat order, with its hash', async () => {
    // 450: two full batches of 200 and a partial one. Every third peer has no hash (it vanished).
    const ids = Array.from({ length: 450 }, (_, i) => `peer-${String(i).padStart(3, '0')}`);
    const write = redis.pipeline();
    ids.forEach((id, i) => {
      write.zadd(keys.peers(), 1000 + i, id);
      if (i % 3 !== 0) write.hset(keys.peer(id), { id, state: i % 2 === 0 ? 'active' : 'draining' });
    });
    await write.exec();
    const listed = await store.list();
    expect(listed.map((p) => p.id)).toEqual(ids);
    expect(listed.map((p) => p.heartbeatAt)).toEqual(ids.map((_, i) => 1000 + i));
    expect(listed.map((p) => p.exists)).toEqual(ids.map((_, i) => i % 3 !== 0));
    expect(listed.map((p) => p.state)).toEqual(
      ids.map((_, i) => (i % 3 === 0 ? '' : i % 2 === 0 ? 'active' : 'draining')),
    );
  });

  it("when a peer's key is not a hash then the list fails with Redis's error instead of reading a peer from it", async () => {
    await redis.zadd(keys.peers(), 1000, 'peer-a', 1001, 'peer-b');
    await redis.hset(keys.peer('peer-a'), { id: 'peer-a', state: 'active' });
    await redis.set(keys.peer('peer-b'), 'not a hash');
    await expect(store.list()).rejects.toThrow(/WRONGTYPE/);
  });

  it('when no peer is indexed then the list is empty', async () => {
    expect(await store.list()).toEqual([]);
  });

  it('when a peer runs set holds members that are not run ids then only the run ids are returned', async () => {
    await redis.sadd(
      keys.peerRuns('peer-a'),
      ...['0', '7', '-1', 'x', '1.5', '9007199254740993'],
      // Not canonical: Number() would read these as runs 0, 7, 1000, 8 and 9.
      ...['', '07', '1e3', ' 8', '0x9'],
    );
    expect((await store.runsOf('peer-a')).sort((a, b) => a - b)).toEqual([0, 7]);
    await store.forgetRun('peer-a', 7);
    expect(await store.runsOf('peer-a')).toEqual([0]);
    expect(await store.runsOf('peer-b')).toEqual([]);
  });

  it('when a peer event is published then subscribers get it as sent', async () => {
    const sub = createRedis({
      url: server.url,
      role: 'worker',
      name: 'peer-store-sub',
      logger: testLogger(),
    });
    const got: PeerEvent[] = [];
    sub.on('message', (_c: string, raw: string) => got.push(peerEventSchema.parse(JSON.parse(raw))));
    try {
      await subscribeWhenReady(sub, keys.peerEvents());
      const event: PeerEvent = { type: 'lost', peerId: 'peer-a', address: '10.0.0.1', at: 5 };
      await store.publish(event);
      await waitFor('the lost event', () => got.length > 0);
      expect(got).toEqual([event]);
    } finally {
      await closeRedis(sub);
    }
  });

  it('when a sync result is written then it reads back field for field, and a peer never probed reads null', async () => {
    const up: PeerSyncResult = {
      ok: true,
      status: 200,
      version: '1.2.3',
      rttMs: 4,
      at: 1700,
      error: '',
      halfDead: false,
    };
    const halfDead: PeerSyncResult = {
      ok: false,
      status: 0,
      version: '',
      rttMs: 0,
      at: 1800,
      error: 'connect ECONNREFUSED',
      halfDead: true,
    };
    await store.writeSync('peer-a', up);
    await store.writeSync('peer-b', halfDead);
    expect(await store.readSync('peer-a')).toEqual(up);
    expect(await store.readSync('peer-b')).toEqual(halfDead);
    expect(await store.readSync('peer-c')).toBeNull();
    // As operators and remote-manager read the hash (docs/scheduler-sync.md): flags are 1 and 0.
    expect(await redis.hgetall(keys.peerSync('peer-a'))).toEqual({
      ok: '1',
      status: '200',
      version: '1.2.3',
      rttMs: '4',
      at: '1700',
      error: '',
      halfDead: '0',
    });
    expect(await redis.hgetall(keys.peerSync('peer-b'))).toEqual({
      ok: '0',
      status: '0',
      version: '',
      rttMs: '0',
      at: '1800',
      error: 'connect ECONNREFUSED',
      halfDead: '1',
    });
  });

  it('when a sync result has only some fields then the others read as their defaults', async () => {
    await redis.hset(keys.peerSync('peer-a'), { ok: '1' });
    expect(await store.readSync('peer-a')).toEqual({
      ok: true,
      status: 0,
      version: '',
      rttMs: 0,
      at: 0,
      error: '',
      halfDead: false,
    });
  });

  // Issue 17 item 1: peer-mark-lost-2.lua re-checks the heartbeat score, so a
  // heartbeat landing between the scheduler's read and the script's write
  // wins. The race is driven deterministically: read, heartbeat, then the script.
  describe('markLostIfSilent', () => {
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
});
