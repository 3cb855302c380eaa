import { closeRedis, createRedis, createRedisKeys, RunStore, waitForRedis } from '@rps/common';
import { startRedisServer, testLogger, uniquePrefix, type TestRedisServer } from '@rps/common/testing';
import type { Redis } from 'ioredis';
import { RunLedger } from '../src/stores/run-ledger.store';

// A worker connection resends a command whose reply it lost when it
// reconnects, so an agent's `start` may reach Redis twice. The second must
// not make the agent abandon a run it did start (the record would then say
// running with no process, on a live peer that liveness never declares lost).
describe('RunLedger.start', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let ledger: RunLedger;
  let store: RunStore;
  const logger = testLogger();

  beforeAll(async () => {
    server = await startRedisServer();
    redis = createRedis({ url: server.url, role: 'worker', name: 'run-start-test', logger });
    await waitForRedis(redis);
  });
  beforeEach(() => {
    const keys = createRedisKeys(uniquePrefix());
    ledger = new RunLedger(redis, keys, logger);
    store = new RunStore(redis, keys);
  });
  afterAll(async () => {
    await closeRedis(redis);
    await server.stop();
  });

  const dispatched = async (runId: number, peerId = 'peer-a') => {
    await store.submit(runId, Buffer.from('{}'), { taskId: 1, jobId: 1 });
    expect((await ledger.apply(runId, 'dispatch', { execution: 1, peerId })).ok).toBe(true);
  };
  const start = (runId: number, startedAt: string, peerId = 'peer-a') =>
    ledger.start(runId, { execution: 1, peerId, fields: { startedAt } });

  it('when the same start reaches Redis twice then the second counts as started', async () => {
    await dispatched(1);
    const startedAt = '2026-12-02T05:00:00.123Z';
    // The first delivery, whose reply the connection lost.
    expect(
      (await ledger.apply(1, 'start', { execution: 1, peerId: 'peer-a', fields: { startedAt } })).ok,
    ).toBe(true);
    expect(await start(1, startedAt)).toEqual({ ok: true, state: 'running', execution: 1 });
    expect(await ledger.get(1)).toMatchObject({ state: 'running', peerId: 'peer-a', startedAt });
  });

  it('when the run was started by an earlier life of this peer then the start is refused', async () => {
    await dispatched(2);
    await start(2, '2026-12-02T04:00:00.000Z');
    expect(await start(2, '2026-12-02T05:00:00.000Z')).toMatchObject({ ok: false, state: 'running' });
  });

  it('when the run is running on another peer with the same stamp then the start is refused', async () => {
    await dispatched(3, 'peer-b');
    const startedAt = '2026-12-02T05:00:00.000Z';
    expect((await start(3, startedAt, 'peer-b')).ok).toBe(true);
    expect(await start(3, startedAt, 'peer-a')).toMatchObject({ ok: false, state: 'running' });
    expect(await ledger.get(3)).toMatchObject({ peerId: 'peer-b' });
  });

  it('when the run was stopped before its start then the start is refused and it stays stopped', async () => {
    await dispatched(4);
    expect((await ledger.apply(4, 'stop', { execution: 1, peerId: 'peer-a' })).ok).toBe(true);
    expect(await start(4, '2026-12-02T05:00:00.000Z')).toMatchObject({ ok: false, state: 'stopped' });
    expect(await ledger.get(4)).toMatchObject({ state: 'stopped' });
  });
});
