import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  buildFinalPushes,
  closeRedis,
  createRedis,
  createRedisKeys,
  OutboxDrainer,
  PushOutbox,
  QUEUES,
  RunStore,
  waitForRedis,
  type RedisKeys,
} from '@rps/common';
import { startRedisServer, testLogger, uniquePrefix, type TestRedisServer } from '@rps/common/testing';

// The push outbox: final pushes written with the final state, moved onto the
// `pushes` queue under their own ids, never twice.
describe('push outbox against a real Redis', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let keys: RedisKeys;
  let runs: RunStore;
  let outbox: PushOutbox;
  let queue: Queue;
  let drainer: OutboxDrainer;
  const meta = { taskId: 7, jobId: 5 };
  const report = (runId: number) =>
    buildFinalPushes({
      runId,
      execution: 1,
      event: 'succeed',
      finishedAt: '2026-01-01T00:00:05.000Z',
      output: 'out\n',
      errMsg: '',
    });

  beforeAll(async () => {
    server = await startRedisServer();
    redis = createRedis({ url: server.url, role: 'worker', name: 'outbox-test', logger: testLogger() });
    await waitForRedis(redis);
  });
  beforeEach(async () => {
    keys = createRedisKeys(uniquePrefix());
    runs = new RunStore(redis, keys);
    outbox = new PushOutbox(redis, keys);
    queue = new Queue(QUEUES.pushes, { connection: redis, prefix: keys.bullPrefix });
    drainer = new OutboxDrainer({
      outbox,
      queue,
      retry: { attempts: 2, backoffMs: 10 },
      logger: testLogger(),
    });
  });
  afterEach(async () => {
    await queue.close();
  });
  afterAll(async () => {
    await closeRedis(redis);
    await server.stop();
  });

  async function running(runId: number): Promise<void> {
    await runs.submit(runId, Buffer.from('{}'), meta);
    await runs.apply(runId, 'dispatch', { peerId: 'p1' });
    await runs.apply(runId, 'start', { peerId: 'p1' });
  }

  it('when a final state is applied with its pushes then both are written in one step, and a refused change writes neither', async () => {
    await running(1);
    const entry = report(1);
    expect(await runs.apply(1, 'succeed', { peerId: 'p1', outbox: { ...entry, dueAt: 5000 } })).toMatchObject(
      {
        ok: true,
      },
    );
    expect((await outbox.get(entry.jobId))?.entry).toEqual(entry);
    expect(await redis.zscore(keys.pushOutboxDue(), entry.jobId)).toBe('5000');
    // A second final event is refused by the state machine: nothing more in the outbox.
    expect(
      await runs.apply(1, 'fail', { peerId: 'p1', outbox: { ...report(1), jobId: 'other' } }),
    ).toMatchObject({
      ok: false,
    });
    expect(await outbox.get('other')).toBeNull();
  });

  it('when an entry is drained twice (a crash before its delete) then the queue holds one job', async () => {
    await running(2);
    const entry = report(2);
    await runs.apply(2, 'succeed', { peerId: 'p1', outbox: entry });
    expect(await drainer.drainDue()).toBe(1);
    expect(await outbox.size()).toBe(0);
    // As if the drainer had died between the add and the delete: the same entry again.
    await redis.hset(keys.pushOutbox(), entry.jobId, JSON.stringify(entry));
    await redis.zadd(keys.pushOutboxDue(), 0, entry.jobId);
    await drainer.drainDue();
    expect(await outbox.size()).toBe(0);
    expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 1 });
    expect((await queue.getJob(entry.jobId))?.data).toEqual(entry.data);
  });

  it('when an entry is not due yet then only its writer (or its owner) queues it', async () => {
    await running(3);
    const entry = report(3);
    await runs.apply(3, 'succeed', {
      peerId: 'p1',
      outbox: { ...entry, dueAt: Date.now() + 60_000, owner: 'p1' },
    });
    expect(await drainer.drainDue()).toBe(0);
    expect(await drainer.drainOwnedBy('p2')).toBe(0);
    expect(await drainer.drainOwnedBy('p1')).toBe(1);
    expect(await queue.getJob(entry.jobId)).toBeDefined();
    expect(await outbox.size()).toBe(0);
  });
});
