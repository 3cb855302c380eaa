import { CANCELLED_BEFORE_START_REASON, pushJobDataSchema, RunStore, runJobId } from '@rps/common';
import { createTestPki, startRedisServer, type TestPki, type TestRedisServer } from '@rps/common/testing';
import { call, runBody, simulateAgent, startGateway, type TestGateway } from './gateway-harness';

describe('POST /rps/run/:run_id/stop', () => {
  let redisServer: TestRedisServer;
  let pki: TestPki;
  let gw: TestGateway;
  let store: RunStore;

  beforeAll(async () => {
    pki = createTestPki();
    redisServer = await startRedisServer();
  });
  beforeEach(async () => {
    gw = await startGateway(redisServer.url, pki, { stopAckTimeoutMs: 500 });
    store = new RunStore(gw.redis, gw.keys);
  });
  afterEach(async () => gw.close());
  afterAll(async () => {
    await redisServer.stop();
    pki.cleanup();
  });

  const submit = async (runId: number) => {
    const res = await call(pki, gw.port, `/rps/run/${runId}`, {
      method: 'POST',
      body: JSON.stringify(runBody(runId)),
    });
    expect(res.status).toBe(200);
  };
  // IVIS-core's stop body is its axios options by mistake (ivis-protocol.md 1.1).
  const stop = (runId: number | string) =>
    call(pki, gw.port, `/rps/run/${runId}/stop`, { method: 'POST', body: '{"timeout":2000}' });

  it('when the run is queued then it is stopped, its job removed and the final push and stop emit are queued', async () => {
    await submit(42);
    const res = await stop(42);
    expect(res.status).toBe(200);
    const record = await store.get(42);
    // The reason marks it as owing the stop pushes (scheduler-sync repairs a lost enqueue).
    expect(record).toMatchObject({
      state: 'stopped',
      error: 'INFO: Run Cancelled\n',
      reason: CANCELLED_BEFORE_START_REASON,
    });
    expect(Date.parse(record!.finishedAt)).toBeGreaterThan(Date.now() - 10_000);
    expect(await gw.runsQueue.getJob(runJobId(42, 1))).toBeUndefined();
    const jobs = await gw.pushesQueue.getJobs(['waiting'], 0, -1, true);
    expect(jobs.map((j): unknown => j.data)).toEqual([
      {
        kind: 'status',
        body: {
          runId: 42,
          status: { status: 2, finished_at: record!.finishedAt },
          output: 'INFO: Run Cancelled\n',
        },
      },
      { kind: 'emit', body: { type: 'run/42/stop' } },
    ]);
    for (const job of jobs) {
      expect(pushJobDataSchema.safeParse(job.data).success).toBe(true);
      // Kept when delivered: the id keeps a repair from pushing twice.
      expect(job.opts).toMatchObject({
        attempts: 10,
        backoff: { type: 'exponential' },
        removeOnComplete: false,
      });
    }
    expect((await call(pki, gw.port, '/rps/run/42')).json()).toMatchObject({
      status: 2,
      error: 'INFO: Run Cancelled\n',
    });
  });

  it('when the stop pushes cannot be queued after the run was stopped then the answer is 5xx and the run stays marked as owing them', async () => {
    await submit(47);
    // BullMQ's add script fails on keys of the wrong type; the run store's keys are untouched.
    await gw.redis.set(gw.pushesQueue.keys.wait!, 'not a list');
    await gw.redis.set(gw.pushesQueue.keys.events!, 'not a stream');
    const res = await stop(47);
    expect(res.status).toBeGreaterThanOrEqual(500);
    // What scheduler-sync's reconciliation looks for to enqueue the pushes itself.
    expect(await store.get(47)).toMatchObject({ state: 'stopped', reason: CANCELLED_BEFORE_START_REASON });
  });

  it('when a stopped run is stopped again then it is 200 and nothing more is pushed', async () => {
    await submit(43);
    await stop(43);
    expect((await stop(43)).status).toBe(200);
    expect(await gw.pushesQueue.getJobCounts('waiting')).toEqual({ waiting: 2 });
  });

  it('when the run is dispatched but not started then it is stopped and leaves its peer’s set', async () => {
    await submit(44);
    await store.apply(44, 'dispatch', { execution: 1, peerId: 'peer-4' });
    expect((await stop(44)).status).toBe(200);
    expect((await store.get(44))?.state).toBe('stopped');
    expect(await gw.redis.sismember(gw.keys.peerRuns('peer-4'), '44')).toBe(0);
    // The agent's start now loses its compare-and-set.
    expect((await store.apply(44, 'start', { execution: 1, peerId: 'peer-4' })).ok).toBe(false);
    expect(await gw.pushesQueue.getJobCounts('waiting')).toEqual({ waiting: 2 });
  });

  it('when the run is running and its agent acknowledges then it is 200 and the agent got the stop', async () => {
    await submit(45);
    await store.apply(45, 'dispatch', { execution: 1, peerId: 'peer-5' });
    await store.apply(45, 'start', { execution: 1, peerId: 'peer-5' });
    const agent = simulateAgent(gw.redis, gw.keys, 'peer-5', () => ({
      peerId: 'peer-5',
      ok: true,
      message: '',
    }));
    try {
      expect((await stop(45)).status).toBe(200);
      expect(agent.seen).toEqual([{ kind: 'stop', id: expect.any(String), runId: 45, execution: 1 }]);
    } finally {
      await agent.stop();
    }
    // The agent, not the gateway, ends a running run and pushes its end.
    expect((await store.get(45))?.state).toBe('running');
    expect(await gw.pushesQueue.getJobCounts('waiting')).toEqual({ waiting: 0 });
  });

  it('when the running run’s agent does not answer then it is a 503 naming the peer', async () => {
    await submit(46);
    await store.apply(46, 'dispatch', { execution: 1, peerId: 'peer-6' });
    await store.apply(46, 'start', { execution: 1, peerId: 'peer-6' });
    const res = await stop(46);
    expect(res.status).toBe(503);
    expect(res.json()).toMatchObject({
      code: 'stop_not_acknowledged',
      error: 'peer peer-6 did not acknowledge the stop within 0.5 s',
    });
  });

  it('when the agent refuses the stop then it is a 503 with the agent’s message', async () => {
    await submit(47);
    await store.apply(47, 'dispatch', { execution: 1, peerId: 'peer-7' });
    await store.apply(47, 'start', { execution: 1, peerId: 'peer-7' });
    const agent = simulateAgent(gw.redis, gw.keys, 'peer-7', () => ({
      peerId: 'peer-7',
      ok: false,
      message: 'run 47 is not running here',
    }));
    try {
      const res = await stop(47);
      expect(res.status).toBe(503);
      expect(res.json()).toMatchObject({ code: 'stop_failed', error: 'run 47 is not running here' });
    } finally {
      await agent.stop();
    }
  });

  it('when the run is final then it is 200 and nothing changes', async () => {
    await submit(48);
    await store.apply(48, 'dispatch', { execution: 1, peerId: 'peer-8' });
    await store.apply(48, 'start', { execution: 1, peerId: 'peer-8' });
    await store.apply(48, 'succeed', { execution: 1, peerId: 'peer-8' });
    expect((await stop(48)).status).toBe(200);
    expect((await store.get(48))?.state).toBe('succeeded');
    expect(await gw.redis.exists(gw.keys.peerControl('peer-8'))).toBe(0);
  });

  it('when the run is unknown then it is a 404 JSON, and a bad id a 400', async () => {
    expect((await stop(999)).status).toBe(404);
    expect((await stop('nine')).json()).toMatchObject({ details: [{ path: 'run_id' }] });
  });
});
