import type { Redis } from 'ioredis';
import {
  closeRedis,
  createRedis,
  createRedisKeys,
  RunStore,
  toStatusResponse,
  waitForRedis,
} from '@rps/common';
import { startRedisServer, testLogger, uniquePrefix, type TestRedisServer } from '@rps/common/testing';

describe('RunStore against a real Redis', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let store: RunStore;
  let keys: ReturnType<typeof createRedisKeys>;
  const body = Buffer.from('{"taskId":7,"codeArchive":{"type":"Buffer","data":[0,255]},"x":"\u00e9"}');
  const meta = { taskId: 7, jobId: 5 };

  beforeAll(async () => {
    server = await startRedisServer({ appendonly: true });
    redis = createRedis({ url: server.url, role: 'worker', name: 'run-store-test', logger: testLogger() });
    await waitForRedis(redis);
  });
  beforeEach(() => {
    keys = createRedisKeys(uniquePrefix());
    store = new RunStore(redis, keys);
  });
  afterAll(async () => {
    await closeRedis(redis);
    await server.stop();
  });

  it('when a run is submitted then it is queued with execution 1 and the body is kept byte for byte', async () => {
    expect(await store.submit(42, body, meta, 1000)).toEqual({
      outcome: 'created',
      execution: 1,
      state: 'queued',
      pending: false,
    });
    expect((await store.request(42))?.equals(body)).toBe(true);
    expect(await store.get(42)).toMatchObject({
      runId: 42,
      state: 'queued',
      execution: 1,
      taskId: 7,
      jobId: 5,
    });
    expect(await redis.zscore(keys.runIndex(), '42')).toBe('1000');
  });

  it('when a live run is submitted again then nothing changes (idempotent retry)', async () => {
    await store.submit(42, body, meta);
    await store.apply(42, 'dispatch', { peerId: 'p1', execution: 1 });
    expect(await store.submit(42, Buffer.from('{}'), meta)).toEqual({
      outcome: 'existing',
      execution: 1,
      state: 'dispatched',
      pending: false,
    });
    expect((await store.request(42))?.equals(body)).toBe(true);
  });

  it('when a final run is submitted again then a new execution starts with empty output', async () => {
    await store.submit(42, body, meta);
    await store.apply(42, 'dispatch', { peerId: 'p1' });
    await store.apply(42, 'start', { peerId: 'p1' });
    await store.appendOutput(42, 1, 'old');
    await store.apply(42, 'succeed', { peerId: 'p1', fields: { finishedAt: '2026-01-01T00:00:00.000Z' } });
    expect(await store.submit(42, body, meta)).toEqual({
      outcome: 'resubmitted',
      execution: 2,
      state: 'queued',
      pending: false,
    });
    const record = await store.get(42);
    expect(record).toMatchObject({ state: 'queued', execution: 2, peerId: '', finishedAt: '' });
    expect(await store.output(42)).toBe('');
    expect(await store.appendOutput(42, 1, 'late write of execution 1')).toBe(false);
  });

  it('when a resubmitted run is submitted again while live then the answer names its current execution', async () => {
    await store.submit(42, body, meta);
    await store.apply(42, 'dispatch', { peerId: 'p1' });
    await store.apply(42, 'start', { peerId: 'p1' });
    await store.apply(42, 'succeed', { peerId: 'p1', fields: { finishedAt: '2026-01-01T00:00:00.000Z' } });
    await store.submit(42, body, meta);
    expect(await store.submit(42, body, meta)).toEqual({
      outcome: 'existing',
      execution: 2,
      state: 'queued',
      pending: false,
    });
  });

  it('when a peer dispatches and starts a run then it owns it, and a second start is refused', async () => {
    await store.submit(1, body, meta);
    expect(await store.apply(1, 'dispatch', { peerId: 'p1', execution: 1 })).toEqual({
      ok: true,
      state: 'dispatched',
      execution: 1,
    });
    expect(await redis.smembers(keys.peerRuns('p1'))).toEqual(['1']);
    expect(await store.apply(1, 'start', { peerId: 'p2' })).toEqual({
      ok: false,
      reason: 'run 1 is held by another peer or execution (now execution 1)',
      state: 'dispatched',
    });
    expect(await store.apply(1, 'start', { peerId: 'p1' })).toMatchObject({ ok: true, state: 'running' });
    // Still the peer's: liveness finds the run in its set, and the record names it.
    expect(await redis.smembers(keys.peerRuns('p1'))).toEqual(['1']);
    expect((await store.get(1))?.peerId).toBe('p1');
    const again = await store.apply(1, 'start', { peerId: 'p1' });
    expect(again).toEqual({ ok: false, reason: 'cannot start a run that is running', state: 'running' });
  });

  it('when a run ends then it leaves its peer set and carries finishedAt and error into the status', async () => {
    await store.submit(3, body, meta);
    await store.apply(3, 'dispatch', { peerId: 'p1' });
    await store.apply(3, 'start', { peerId: 'p1' });
    await store.appendOutput(3, 1, 'step 1\n');
    const done = await store.apply(3, 'fail', {
      peerId: 'p1',
      fields: { finishedAt: '2026-01-01T00:00:00.000Z', error: 'Run failed with code 1' },
    });
    expect(done).toEqual({ ok: true, state: 'failed', execution: 1 });
    expect(await redis.smembers(keys.peerRuns('p1'))).toEqual([]);
    // The record still names the peer that ran it; no final pushes were given, so none are kept.
    expect((await store.get(3))?.peerId).toBe('p1');
    expect(await redis.hlen(keys.pushOutbox())).toBe(0);
    expect(await redis.zcard(keys.pushOutboxDue())).toBe(0);
    const record = (await store.get(3))!;
    expect(toStatusResponse(record, await store.output(3))).toEqual({
      status: 2,
      output: 'step 1\n',
      error: 'Run failed with code 1',
      finished_at: '2026-01-01T00:00:00.000Z',
    });
  });

  it('when a run starts in the building phase then IVIS-core sees QUEUED until markRunning, which only a running execution takes', async () => {
    await store.submit(6, body, meta);
    await store.apply(6, 'dispatch', { peerId: 'p1' });
    expect(await store.markRunning(6, 1, '2026-01-01T00:00:01.000Z')).toBe(false);
    await store.apply(6, 'start', { peerId: 'p1', fields: { phase: 'building', startedAt: 'x' } });
    expect(toStatusResponse((await store.get(6))!, '').status).toBe(4);
    expect(await store.markRunning(6, 2, '2026-01-01T00:00:01.000Z')).toBe(false);
    expect(await store.markRunning(6, 1, '2026-01-01T00:00:01.000Z')).toBe(true);
    const record = (await store.get(6))!;
    expect(record).toMatchObject({ phase: '', startedAt: '2026-01-01T00:00:01.000Z' });
    expect(toStatusResponse(record, '').status).toBe(3);
  });

  it('when a dispatched run is requeued then it has no owner and can be dispatched elsewhere', async () => {
    await store.submit(4, body, meta);
    await store.apply(4, 'dispatch', { peerId: 'p1' });
    expect(await store.apply(4, 'requeue', { peerId: 'p1' })).toMatchObject({ ok: true, state: 'queued' });
    expect((await store.get(4))?.peerId).toBe('');
    expect(await redis.smembers(keys.peerRuns('p1'))).toEqual([]);
    expect(await store.apply(4, 'dispatch', { peerId: 'p2' })).toMatchObject({ ok: true });
  });

  it('when an event names another execution then it is dropped', async () => {
    await store.submit(5, body, meta);
    expect(await store.apply(5, 'stop', { execution: 2 })).toMatchObject({ ok: false, state: 'queued' });
    expect(await store.apply(5, 'stop', { execution: 1 })).toMatchObject({ ok: true, state: 'stopped' });
  });

  it('when a run is deleted then every key is gone, output cannot come back, and deleting again is fine', async () => {
    await store.submit(6, body, meta);
    await store.apply(6, 'dispatch', { peerId: 'p1' });
    expect((await store.delete(6))?.peerId).toBe('p1');
    expect(await redis.exists(keys.run(6), keys.runRequest(6), keys.runOutput(6))).toBe(0);
    expect(await redis.smembers(keys.peerRuns('p1'))).toEqual([]);
    expect(await store.appendOutput(6, 1, 'late')).toBe(false);
    expect(await redis.exists(keys.runOutput(6))).toBe(0);
    expect(await store.delete(6)).toBeNull();
    expect(await store.apply(6, 'start', { peerId: 'p1' })).toEqual({
      ok: false,
      reason: 'run 6 does not exist',
      state: null,
    });
  });

  it('when a final state carries its pushes then the outbox holds them, due at the given time or now', async () => {
    for (const runId of [11, 12]) {
      await store.submit(runId, body, meta);
      await store.apply(runId, 'dispatch', { peerId: 'p1' });
      await store.apply(runId, 'start', { peerId: 'p1' });
    }
    const entry = (runId: number) => ({
      jobId: `final-${runId}-1`,
      data: { kind: 'sequence' as const, runId, execution: 1, pushes: [] },
      owner: 'p1',
    });
    await store.apply(11, 'succeed', { peerId: 'p1', now: 1000, outbox: { ...entry(11), dueAt: 5000 } });
    await store.apply(12, 'succeed', { peerId: 'p1', now: 2000, outbox: entry(12) });
    expect(JSON.parse((await redis.hget(keys.pushOutbox(), 'final-11-1'))!)).toEqual(entry(11));
    expect(await redis.zscore(keys.pushOutboxDue(), 'final-11-1')).toBe('5000');
    expect(await redis.zscore(keys.pushOutboxDue(), 'final-12-1')).toBe('2000');
  });

  it('when a submit is pending then it is flagged so until acknowledged, and an acknowledgement of another execution changes nothing', async () => {
    expect(await store.submit(13, body, meta, 1000, { pending: true })).toMatchObject({
      outcome: 'created',
      pending: true,
    });
    expect((await store.get(13))?.pendingSince).not.toBe('');
    expect(await store.acknowledge(13, 2, 60_000)).toBe('changed');
    expect((await store.get(13))?.pendingSince).not.toBe('');
    expect(await store.acknowledge(13, 1, 60_000)).toBe('acked');
    expect((await store.get(13))?.pendingSince).toBe('');
    expect(await store.acknowledge(14, 1, 60_000)).toBe('gone');
  });

  it('when a pending submit is failed then it is failed with its error, reason and time; a young one is spared on request, an acknowledged one always', async () => {
    await store.submit(15, body, meta, 1000, { pending: true });
    const fields = { error: 'Remote run failed: no answer', reason: 'never acknowledged' };
    // Pending for far less than a minute: spared.
    expect(await store.failPending(15, 1, { ...fields, minPendingMs: 60_000, now: 3000 })).toBe(false);
    expect(await store.failPending(15, 2, { ...fields, now: 3000 })).toBe(false);
    expect((await store.get(15))?.state).toBe('queued');
    expect(await store.failPending(15, 1, { ...fields, now: 3000 })).toBe(true);
    expect(await store.get(15)).toMatchObject({
      state: 'failed',
      error: 'Remote run failed: no answer',
      reason: 'never acknowledged',
      finishedAt: new Date(3000).toISOString(),
      pendingSince: '',
    });
    expect(await redis.zscore(keys.runIndex(), '15')).toBe('3000');
    await store.submit(16, body, meta, 1000, { pending: true });
    expect(await store.acknowledge(16, 1, 60_000)).toBe('acked');
    expect(await store.failPending(16, 1, fields)).toBe(false);
    expect((await store.get(16))?.state).toBe('queued');
  });

  it('when output is appended to a live execution then it is kept, even an empty chunk counts as written', async () => {
    await store.submit(17, body, meta);
    expect(await store.appendOutput(17, 1, '')).toBe(true);
    expect(await store.appendOutput(17, 1, 'line\n')).toBe(true);
    expect(await store.appendOutput(17, 2, 'other execution')).toBe(false);
    expect(await store.output(17)).toBe('line\n');
  });

  it('when Redis restarts with AOF on then accepted runs are still there', async () => {
    await store.submit(7, body, meta);
    await server.restart();
    await waitForRedis(redis);
    expect(await store.get(7)).toMatchObject({ state: 'queued', execution: 1 });
  });
});
