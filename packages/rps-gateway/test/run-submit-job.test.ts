import { Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  createRedis,
  createRedisKeys,
  closeRedis,
  QUEUES,
  RunStore,
  runJobId,
  waitForRedis,
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
import { RUN_JOB_OPTIONS, RunSubmitStore } from '../src/stores/run-submit.store';
import { call, runBody, startGateway, type TestGateway } from './gateway-harness';

/*
 * The gateway adds a run's BullMQ job inside its own submit script
 * (run-submit-enqueue-n.lua, which writes what BullMQ's add script writes
 * for such a job). What the agents read must stay exactly what `queue.add`
 * writes: checked here against a real BullMQ Worker and, key by key, against
 * the same jobs added the ordinary way.
 */
describe('the run job added by the submit script', () => {
  let redisServer: TestRedisServer;
  let pki: TestPki;
  let gw: TestGateway;
  /** A request-role connection, as the gateway's submits use, for the tests that drive RunSubmitStore itself. */
  let redis: Redis;

  beforeAll(async () => {
    pki = createTestPki();
    redisServer = await startRedisServer();
    redis = createRedis({ url: redisServer.url, role: 'request', name: 't-submits', logger: testLogger() });
    await waitForRedis(redis);
  });
  beforeEach(async () => {
    gw = await startGateway(redisServer.url, pki);
  });
  afterEach(async () => gw.close());
  afterAll(async () => {
    await closeRedis(redis);
    await redisServer.stop();
    pki.cleanup();
  });

  const post = (runId: number) =>
    call(pki, gw.port, `/rps/run/${runId}`, { method: 'POST', body: JSON.stringify(runBody(runId)) });

  it('when runs are posted then a real BullMQ Worker receives each job with its id, name and data, and completes it', async () => {
    const connection = createRedis({
      url: redisServer.url,
      role: 'worker',
      name: 't-worker',
      logger: testLogger(),
    });
    await waitForRedis(connection);
    const seen: Array<Pick<Job, 'id' | 'name' | 'data'>> = [];
    const worker = new Worker(
      QUEUES.runs,
      async (job: Job) => {
        seen.push({ id: job.id, name: job.name, data: job.data as unknown });
        return 'done';
      },
      { connection, prefix: gw.keys.bullPrefix, concurrency: 2 },
    );
    worker.on('error', () => undefined);
    try {
      for (const runId of [301, 302, 303]) expect((await post(runId)).status).toBe(200);
      await waitFor('the worker to take all three jobs', () => seen.length === 3);
      expect(seen.sort((a, b) => String(a.id).localeCompare(String(b.id)))).toEqual(
        [301, 302, 303].map((runId) => ({
          id: runJobId(runId, 1),
          name: 'run',
          data: { runId, execution: 1 },
        })),
      );
      // removeOnComplete: a completed run job is gone.
      await waitFor(
        'the completed jobs to be removed',
        async () => (await gw.runsQueue.getJob(runJobId(303, 1))) === undefined,
      );
    } finally {
      await worker.close();
      await closeRedis(connection);
    }
  });

  /** Everything under a queue's keys, by key (the queue's prefix cut off): what an agent or BullMQ could read. */
  async function queueContents(redis: Redis, queue: Queue): Promise<Record<string, unknown>> {
    const prefix = `${queue.opts.prefix}:${queue.name}:`;
    const contents: Record<string, unknown> = {};
    for (const key of (await redis.keys(`${prefix}*`)).sort()) {
      const name = key.slice(prefix.length);
      const type = await redis.type(key);
      if (type === 'hash') {
        const hash = await redis.hgetall(key);
        // A job's creation time: the gateway's clock at the batch, Date.now() at queue.add.
        if ('timestamp' in hash) hash.timestamp = String(Number(hash.timestamp) > 0);
        contents[name] = hash;
      } else if (type === 'list') contents[name] = await redis.lrange(key, 0, -1);
      else if (type === 'zset') contents[name] = await redis.zrange(key, 0, -1, 'WITHSCORES');
      else if (type === 'string') contents[name] = await redis.get(key);
      else if (type === 'set') contents[name] = (await redis.smembers(key)).sort();
      else if (type === 'stream')
        contents[name] = (await redis.xrange(key, '-', '+')).map(([, fields]) => fields);
      else contents[name] = `unexpected type ${type}`;
    }
    return contents;
  }

  it('when runs are submitted then every key of the queue holds what queue.add writes for the same jobs, in every queue state', async () => {
    const oursKeys = createRedisKeys(uniquePrefix('ours'));
    // Queues that never wrote their meta, as on a Redis the gateway meets first.
    const queue = (prefix: string) =>
      new Queue(QUEUES.runs, { connection: redis, prefix, skipMetasUpdate: true });
    const ours = queue(oursKeys.bullPrefix);
    const theirs = queue(createRedisKeys(uniquePrefix('theirs')).bullPrefix);
    const submits = new RunSubmitStore(redis, oursKeys, ours);
    const meta = { taskId: 7, jobId: 5 };
    const body = (runId: number) => Buffer.from(JSON.stringify(runBody(runId)));
    /** The same runs, each as the gateway's submit and as queue.add of the same job; then both queues compared. */
    const add = async (...runIds: number[]) => {
      await Promise.all(runIds.map((runId) => submits.submitAndEnqueue(runId, body(runId), meta)));
      for (const runId of runIds) {
        await theirs.add('run', { runId, execution: 1 }, { ...RUN_JOB_OPTIONS, jobId: runJobId(runId, 1) });
      }
      const [mine, reference] = [await queueContents(redis, ours), await queueContents(redis, theirs)];
      expect({ runIds, queue: mine }).toEqual({ runIds, queue: reference });
      return mine;
    };
    const both = async (step: (queue: Queue) => Promise<unknown>) => {
      await step(ours);
      await step(theirs);
    };
    /** A key of the queue, on both sides. */
    const key = (q: Queue, name: string) => `${q.opts.prefix}:${q.name}:${name}`;
    try {
      await add(401); // a queue without meta (skipMetasUpdate): the add sets the event limit
      await add(402, 403); // one batch of two
      await add(402); // the same job again: `duplicated`, nothing else
      // A worker takes the marker when it wakes; without one, only a startable job adds it.
      await both((q) => redis.del(key(q, 'marker')));
      await both((q) => q.pause());
      await add(404); // paused: no marker
      await both((q) => q.resume());
      await both((q) => q.setGlobalConcurrency(1));
      await both((q) => redis.lpush(key(q, 'active'), 'busy'));
      await both((q) => redis.del(key(q, 'marker')));
      await add(405); // at its concurrency: no marker
      await both((q) => q.removeGlobalConcurrency());
      const last = await add(406, 407);
      expect(Object.keys(last)).toEqual(expect.arrayContaining(['events', 'id', 'marker', 'meta', 'wait']));
    } finally {
      await ours.close();
      await theirs.close();
    }
  });

  /** A runs queue of its own, whose BullMQ add `change` alters (as an upgrade might). */
  function alteredQueue(change: (args: unknown[]) => unknown[]) {
    const keys = createRedisKeys(uniquePrefix('shape'));
    const queue = new Queue(QUEUES.runs, { connection: redis, prefix: keys.bullPrefix });
    type AddJob = (...args: unknown[]) => Promise<unknown>;
    const backend = (queue as unknown as { backend: { addJobToTransaction: AddJob } }).backend;
    const original = backend.addJobToTransaction.bind(backend);
    backend.addJobToTransaction = (...args) => original(...change(args));
    return { keys, queue, submits: new RunSubmitStore(redis, keys, queue) };
  }

  it("when BullMQ would pack a job option the script does not write then the gateway's check and every submit fail with RPSBULL, leaving no record, job or staged body", async () => {
    // One more option for the same job.
    const altered = alteredQueue(([client, job, ...rest]) => {
      const { opts } = job as { opts: object };
      return [client, { ...(job as object), opts: { ...opts, lifo: true } }, ...rest];
    });
    const { keys, queue, submits } = altered;
    try {
      const refusal = /RPSBULL BullMQ's job option 'lifo' is not known here/;
      await expect(submits.checkBullShape()).rejects.toThrow(refusal);
      const body = Buffer.from(JSON.stringify(runBody(420)));
      await expect(submits.submitAndEnqueue(420, body, { taskId: 7, jobId: 5 })).rejects.toThrow(refusal);
      expect(await new RunStore(redis, keys).get(420)).toBeNull();
      expect(await queue.getJob(runJobId(420, 1))).toBeUndefined();
      await waitFor(
        'the staged body dropped',
        async () => (await redis.keys(keys.runUpload('*'))).length === 0,
      );
    } finally {
      await altered.queue.close();
    }
  });

  it("when BullMQ's add would take its keys in another order then the gateway's check fails naming them", async () => {
    // The queue's keys as the add's fifth argument, two of them swapped.
    const altered = alteredQueue(([client, job, jobId, parentOpts]) => {
      const keys = (altered.queue as unknown as { keys: Record<string, string> }).keys;
      return [client, job, jobId, parentOpts, { ...keys, meta: keys.paused, paused: keys.meta }];
    });
    try {
      await expect(altered.submits.checkBullShape()).rejects.toThrow(
        /BullMQ's add keys are not wait, paused, meta, id, completed, delayed, active, events, marker/,
      );
      // Unchanged, a queue of the same keys passes.
      const plainQueue = new Queue(QUEUES.runs, {
        connection: redis,
        prefix: altered.keys.bullPrefix,
      });
      try {
        await expect(
          new RunSubmitStore(redis, altered.keys, plainQueue).checkBullShape(),
        ).resolves.toBeUndefined();
      } finally {
        await plainQueue.close();
      }
    } finally {
      await altered.queue.close();
    }
  });

  it('when a final run is posted again then its second execution gets its own job', async () => {
    const store = new RunStore(gw.redis, gw.keys);
    expect((await post(320)).status).toBe(200);
    await store.apply(320, 'dispatch', { execution: 1, peerId: 'p1' });
    await store.apply(320, 'start', { execution: 1, peerId: 'p1' });
    await store.apply(320, 'succeed', {
      execution: 1,
      peerId: 'p1',
      fields: { finishedAt: new Date().toISOString() },
    });
    expect((await post(320)).status).toBe(200);
    expect((await gw.runsQueue.getJob(runJobId(320, 2)))?.data).toEqual({ runId: 320, execution: 2 });
  });
});
