import { Queue } from 'bullmq';
import {
  closeRedis,
  createRedis,
  createRedisKeys,
  QUEUES,
  RunStore,
  runJobId,
  runStateMessageSchema,
  subscribeWhenReady,
  waitForRedis,
  type RedisKeys,
  type RunStateMessage,
} from '@rps/common';
import {
  createTestPki,
  startRedisServer,
  testLogger,
  uniquePrefix,
  waitFor,
  type TestPki,
  type TestRedisServer,
} from '@rps/common/testing';
import type { Redis } from 'ioredis';
import { RunAckStore } from '../src/stores/run-ack.store';
import { RunSubmitStore } from '../src/stores/run-submit.store';
import { call, runBody, startGateway } from './gateway-harness';

/*
 * Submits and acknowledgements go to Redis in batches (group commit,
 * src/stores/group-commit.ts): calls made in the same event-loop turn share
 * one script call. Each run of a batch must come out exactly as if it had
 * been alone.
 */
describe('batched submits and acknowledgements', () => {
  let redisServer: TestRedisServer;
  let redis: Redis;
  let keys: RedisKeys;
  let queue: Queue;
  let store: RunStore;

  beforeAll(async () => {
    redisServer = await startRedisServer();
    redis = createRedis({ url: redisServer.url, role: 'request', name: 't-batch', logger: testLogger() });
    await waitForRedis(redis);
  });
  beforeEach(() => {
    keys = createRedisKeys(uniquePrefix('batch'));
    queue = new Queue(QUEUES.runs, { connection: redis, prefix: keys.bullPrefix });
    store = new RunStore(redis, keys);
  });
  afterEach(async () => queue.close());
  afterAll(async () => {
    await closeRedis(redis);
    await redisServer.stop();
  });

  const meta = { taskId: 7, jobId: 5 };
  const body = (runId: number) => Buffer.from(JSON.stringify(runBody(runId)));

  it('when several runs are submitted in one turn then one script call records each with its own body, execution and job', async () => {
    const submits = new RunSubmitStore(redis, keys, queue);
    const scriptCalls = async () =>
      Number((await redis.info('commandstats')).match(/cmdstat_evalsha:calls=(\d+)/)?.[1] ?? 0);
    await submits.submitAndEnqueue(500, body(500), meta); // loads the script (EVAL after NOSCRIPT)
    const before = await scriptCalls();
    const results = await Promise.all(
      [501, 502, 503, 501].map((runId) => submits.submitAndEnqueue(runId, body(runId), meta)),
    );
    expect((await scriptCalls()) - before).toBe(1);
    expect(results).toEqual([
      { outcome: 'created', execution: 1, state: 'queued', pending: true },
      { outcome: 'created', execution: 1, state: 'queued', pending: true },
      { outcome: 'created', execution: 1, state: 'queued', pending: true },
      // The same run again in the same batch: a retry of a live, still pending run.
      { outcome: 'existing', execution: 1, state: 'queued', pending: true },
    ]);
    for (const runId of [501, 502, 503]) {
      expect((await store.request(runId))?.equals(body(runId))).toBe(true);
      expect(await store.get(runId)).toMatchObject({ state: 'queued', execution: 1, taskId: 7, jobId: 5 });
      expect((await queue.getJob(runJobId(runId, 1)))?.data).toEqual({ runId, execution: 1 });
    }
    // The retry re-added nothing: one job per run (500's, 501's, 502's, 503's).
    expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 4 });
  });

  it('when acknowledgements of different fates share a batch then each gets its own answer and only the acknowledged runs are announced', async () => {
    const submits = new RunSubmitStore(redis, keys, queue);
    const acks = new RunAckStore(redis, keys);
    for (const runId of [511, 512, 513, 514]) await submits.submitAndEnqueue(runId, body(runId), meta);
    // 513 passed its window: wait until Redis's clock moved past a 1 ms window.
    await new Promise((r) => setTimeout(r, 5));
    const subscriber = createRedis({
      url: redisServer.url,
      role: 'worker',
      name: 't-sub',
      logger: testLogger(),
    });
    const events: RunStateMessage[] = [];
    /** What each run's acknowledgement channel carried (an agent's waiting claim listens there). */
    const acknowledged: string[] = [];
    subscriber.on('message', (channel: string, raw: string) => {
      if (channel === keys.runEvents()) events.push(runStateMessageSchema.parse(JSON.parse(raw)));
      else acknowledged.push(`${channel} ${raw}`);
    });
    await subscribeWhenReady(subscriber, keys.runEvents());
    for (const runId of [511, 512, 513, 514, 519]) await subscriber.subscribe(keys.runAcknowledged(runId));
    try {
      const event = (runId: number): RunStateMessage => ({
        runId,
        execution: 1,
        state: 'queued',
        peerId: '',
        at: 1,
      });
      const answers = await Promise.all([
        acks.acknowledge(511, 1, 60_000, event(511)),
        acks.acknowledge(512, 2, 60_000, event(512)), // another execution
        acks.acknowledge(513, 1, 1, event(513)), // too late
        acks.acknowledge(519, 1, 60_000, event(519)), // no such run
        acks.acknowledge(514, 1, 60_000, null), // acknowledged, nothing to announce
      ]);
      expect(answers).toEqual(['acked', 'changed', 'late', 'gone', 'acked']);
      expect((await store.get(511))?.pendingSince).toBe('');
      expect((await store.get(513))?.pendingSince).not.toBe('');
      await waitFor('the announcement of run 511', () => events.length >= 1);
      // Announcements are published inside the script, before its reply: none can still be on the way.
      await redis.ping();
      await subscriber.ping();
      expect(events).toEqual([event(511)]);
      // Every acknowledged run, announced or not, wakes its waiting claims; the others do not.
      expect(acknowledged).toEqual([`${keys.runAcknowledged(511)} 1`, `${keys.runAcknowledged(514)} 1`]);
    } finally {
      await closeRedis(subscriber);
    }
  });
});

describe('POSTs at the same time', () => {
  let redisServer: TestRedisServer;
  let pki: TestPki;

  beforeAll(async () => {
    pki = createTestPki();
    redisServer = await startRedisServer();
  });
  afterAll(async () => {
    await redisServer.stop();
    pki.cleanup();
  });

  it('when 40 runs and repeats of some are posted at once then every POST answers 200 and each run has one execution and one job', async () => {
    const gw = await startGateway(redisServer.url, pki);
    try {
      const runIds = Array.from({ length: 40 }, (_, i) => 600 + i);
      const posts = [...runIds, 600, 601, 602].map((runId) =>
        call(pki, gw.port, `/rps/run/${runId}`, { method: 'POST', body: JSON.stringify(runBody(runId)) }),
      );
      const answers = await Promise.all(posts);
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
      const store = new RunStore(gw.redis, gw.keys);
      for (const runId of runIds) {
        expect(await store.get(runId)).toMatchObject({ state: 'queued', execution: 1, pendingSince: '' });
      }
      expect(await gw.runsQueue.getJobCounts('waiting')).toEqual({ waiting: 40 });
      // Every POST's submit went through the group commit once (Redis was healthy: no retries).
      const metrics = await (await fetch(`http://127.0.0.1:${gw.adminPort}/metrics`)).text();
      expect(metrics).toMatch(/rps_gateway_batch_size_sum\{[^}]*step="submit"[^}]*\} 43\n/);
      const batches = Number(
        /rps_gateway_batch_size_count\{[^}]*step="submit"[^}]*\} (\d+)/.exec(metrics)?.[1],
      );
      expect(batches).toBeGreaterThanOrEqual(1);
      expect(batches).toBeLessThanOrEqual(43);
    } finally {
      await gw.close();
    }
  });
});
