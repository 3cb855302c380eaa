import {
  closeRedis,
  createRedis,
  createRedisKeys,
  RunStore,
  runStateMessageSchema,
  subscribeWhenReady,
  waitForRedis,
  type RedisKeys,
  type RunStateMessage,
} from '@rps/common';
import { startRedisServer, testLogger, uniquePrefix, type TestRedisServer } from '@rps/common/testing';
import type { Redis } from 'ioredis';
import { RunLedger } from '../src/stores/run-ledger.store';

// The agent's state changes announce themselves on the run events channel
// from the script that makes them (run-claim-3.lua, run-apply-5.lua): one
// message per change that happened, none for a refused one, in the order of
// the changes, each a valid RunStateMessage (dashboards and the dispatch
// bench read them; the gateway's `queued` comes from its acknowledgement).
describe('RunLedger announcements', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let subscriber: Redis;
  let keys: RedisKeys;
  let ledger: RunLedger;
  let store: RunStore;
  let messages: unknown[];
  const logger = testLogger();

  beforeAll(async () => {
    server = await startRedisServer();
    redis = createRedis({ url: server.url, role: 'worker', name: 'announce-test', logger });
    subscriber = createRedis({ url: server.url, role: 'worker', name: 'announce-sub', logger });
    await Promise.all([waitForRedis(redis), waitForRedis(subscriber)]);
    subscriber.on('message', (channel: string, raw: string) => {
      if (channel === keys.runEvents()) messages.push(JSON.parse(raw));
    });
  });
  beforeEach(async () => {
    keys = createRedisKeys(uniquePrefix('announce'));
    ledger = new RunLedger(redis, keys, logger);
    store = new RunStore(redis, keys);
    messages = [];
    await subscribeWhenReady(subscriber, keys.runEvents());
  });
  afterEach(async () => subscriber.unsubscribe(keys.runEvents()));
  afterAll(async () => {
    await closeRedis(subscriber);
    await closeRedis(redis);
    await server.stop();
  });

  /** Every message announced so far: each was published before the reply of its change, so a PING after it sees them all. */
  const announced = async (): Promise<RunStateMessage[]> => {
    await subscriber.ping();
    return messages.map((m) => runStateMessageSchema.parse(m));
  };
  const message = (runId: number, state: RunStateMessage['state'], peerId: string, at: number) => ({
    runId,
    execution: 1,
    state,
    peerId,
    at,
  });

  it('when a run is claimed, started and ended then each change is announced once, in order, with its peer and time', async () => {
    await store.submit(41, Buffer.from('{}'), { taskId: 1, jobId: 1 });
    const before = Date.now();
    expect(await ledger.claim(41, 1, 'peer-a')).toMatchObject({ ok: true, state: 'dispatched' });
    const fields = { startedAt: new Date().toISOString() };
    expect(await ledger.start(41, { execution: 1, peerId: 'peer-a', fields })).toMatchObject({ ok: true });
    // The same start again (a resent command): counted as started, not announced twice.
    expect(await ledger.start(41, { execution: 1, peerId: 'peer-a', fields })).toMatchObject({ ok: true });
    // Refused (another peer): nothing announced.
    expect(await ledger.apply(41, 'succeed', { execution: 1, peerId: 'peer-b' })).toMatchObject({
      ok: false,
    });
    expect(await ledger.apply(41, 'succeed', { execution: 1, peerId: 'peer-a' })).toMatchObject({ ok: true });
    const got = await announced();
    expect(got.map(({ at: _at, ...rest }) => rest)).toEqual(
      (['dispatched', 'running', 'succeeded'] as const).map((state) => {
        const { at: _at, ...rest } = message(41, state, 'peer-a', 0);
        return rest;
      }),
    );
    for (const m of got) expect(m.at).toBeGreaterThanOrEqual(before);
  });

  it('when a run is requeued then the announcement names no peer', async () => {
    await store.submit(42, Buffer.from('{}'), { taskId: 1, jobId: 1 });
    expect(await ledger.apply(42, 'dispatch', { execution: 1, peerId: 'peer-a', now: 1000 })).toMatchObject({
      ok: true,
    });
    expect(await ledger.apply(42, 'requeue', { execution: 1, peerId: 'peer-a', now: 2000 })).toMatchObject({
      ok: true,
    });
    expect(await announced()).toEqual([
      message(42, 'dispatched', 'peer-a', 1000),
      message(42, 'queued', '', 2000),
    ]);
  });

  it('when a claim finds the submit not acknowledged then nothing is announced', async () => {
    await store.submit(43, Buffer.from('{}'), { taskId: 1, jobId: 1 }, Date.now(), { pending: true });
    expect(await ledger.claim(43, 1, 'peer-a')).toBe('pending');
    expect(await announced()).toEqual([]);
  });
});
