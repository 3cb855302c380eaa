import { Worker, type Job } from 'bullmq';
import { createRedis, closeRedis, QUEUES, RunStore, runJobId, waitForRedis } from '@rps/common';
import {
  createTestPki,
  startRedisServer,
  testLogger,
  waitFor,
  type TestPki,
  type TestRedisServer,
} from '@rps/common/testing';
import { RUN_JOB_OPTIONS } from '../src/stores/run-submit.store';
import { call, runBody, startGateway, type TestGateway } from './gateway-harness';

/*
 * The gateway adds a run's BullMQ job inside its own submit script
 * (run-submit-enqueue-n.lua, with BullMQ's add script pasted in). What the
 * agents read must stay exactly what `queue.add` writes: checked here against
 * a real BullMQ Worker and against a job added the ordinary way.
 */
describe('the run job added by the submit script', () => {
  let redisServer: TestRedisServer;
  let pki: TestPki;
  let gw: TestGateway;

  beforeAll(async () => {
    pki = createTestPki();
    redisServer = await startRedisServer();
  });
  beforeEach(async () => {
    gw = await startGateway(redisServer.url, pki);
  });
  afterEach(async () => gw.close());
  afterAll(async () => {
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

  it('when compared with a job added by queue.add then every stored field but the timestamps is the same', async () => {
    expect((await post(310)).status).toBe(200);
    await gw.runsQueue.add(
      'run',
      { runId: 311, execution: 1 },
      { ...RUN_JOB_OPTIONS, jobId: runJobId(311, 1) },
    );
    const ours = await gw.redis.hgetall(`${gw.keys.bullPrefix}:${QUEUES.runs}:${runJobId(310, 1)}`);
    const theirs = await gw.redis.hgetall(`${gw.keys.bullPrefix}:${QUEUES.runs}:${runJobId(311, 1)}`);
    const comparable = (hash: Record<string, string>) => {
      const { timestamp: _t, ...rest } = hash;
      // The run ids differ (310 and 311); everything else must match byte for byte.
      return { ...rest, data: rest.data?.replace(/31[01]/, 'N'), opts: rest.opts?.replace(/31[01]/, 'N') };
    };
    expect(Object.keys(ours).length).toBeGreaterThan(3);
    expect(comparable(ours)).toEqual(comparable(theirs));
    const waiting = await gw.runsQueue.getWaiting();
    expect(waiting.map((j) => j.id).sort()).toEqual([runJobId(310, 1), runJobId(311, 1)]);
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
