import { createHash } from 'node:crypto';
import { RunStore, runJobId } from '@rps/common';
import { createTestPki, startRedisServer, type TestPki, type TestRedisServer } from '@rps/common/testing';
import { call, runBody, startGateway, type TestGateway } from './gateway-harness';

describe('POST /rps/run/:run_id', () => {
  let redisServer: TestRedisServer;
  let pki: TestPki;
  let gw: TestGateway;
  let store: RunStore;

  beforeAll(async () => {
    pki = createTestPki();
    redisServer = await startRedisServer();
  });
  beforeEach(async () => {
    gw = await startGateway(redisServer.url, pki);
    store = new RunStore(gw.redis, gw.keys);
  });
  afterEach(async () => gw.close());
  afterAll(async () => {
    await redisServer.stop();
    pki.cleanup();
  });

  const post = (runId: number | string, body: Buffer | string) =>
    call(pki, gw.port, `/rps/run/${runId}`, { method: 'POST', body });

  it('when IVIS-core posts TV1 then it gets 200 with an empty body, the bytes are stored as sent and the job is queued', async () => {
    // Spacing, key order and an unknown field that a re-serialiser would change.
    const raw = Buffer.from(
      `{ "futureField": {"x": [1, 2]},\n${JSON.stringify(runBody(42)).slice(1, -1)}, "note": "caf\u00e9 \\u00e9" }`,
    );
    const res = await post(42, raw);
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(0);
    expect((await store.request(42))?.equals(raw)).toBe(true);
    expect(await store.get(42)).toMatchObject({ state: 'queued', execution: 1, taskId: 7, jobId: 5 });
    const job = await gw.runsQueue.getJob(runJobId(42, 1));
    expect(job?.name).toBe('run');
    expect(job?.data).toEqual({ runId: 42, execution: 1 });
    expect(job?.opts).toMatchObject({ removeOnComplete: true, removeOnFail: 1000 });
  });

  it('when the same POST is retried then there is no second execution and no second job', async () => {
    const raw = JSON.stringify(runBody(43));
    expect((await post(43, raw)).status).toBe(200);
    expect((await post(43, raw)).status).toBe(200);
    expect(await gw.runsQueue.getJobCounts('waiting')).toEqual({ waiting: 1 });
    expect((await store.get(43))?.execution).toBe(1);
  });

  it('when the run is already dispatched or running then a POST answers 200 and changes nothing', async () => {
    await post(44, JSON.stringify(runBody(44)));
    await store.apply(44, 'dispatch', { execution: 1, peerId: 'p1' });
    await gw.runsQueue.obliterate({ force: true });
    expect((await post(44, JSON.stringify(runBody(44, { jobId: 99 })))).status).toBe(200);
    expect(await store.get(44)).toMatchObject({ state: 'dispatched', execution: 1, jobId: 5 });
    expect(await gw.runsQueue.getJobCounts('waiting')).toEqual({ waiting: 0 });
  });

  it('when a queued run lost its job (crash between record and enqueue) then the retried POST adds it', async () => {
    await store.submit(45, Buffer.from(JSON.stringify(runBody(45))), { taskId: 7, jobId: 5 });
    expect(await gw.runsQueue.getJob(runJobId(45, 1))).toBeUndefined();
    expect((await post(45, JSON.stringify(runBody(45)))).status).toBe(200);
    expect((await gw.runsQueue.getJob(runJobId(45, 1)))?.data).toEqual({ runId: 45, execution: 1 });
  });

  it('when a final run is posted again then execution 2 starts with a fresh record and its own job', async () => {
    await post(46, JSON.stringify(runBody(46)));
    await store.apply(46, 'dispatch', { execution: 1, peerId: 'p1' });
    await store.apply(46, 'start', { execution: 1, peerId: 'p1' });
    await store.apply(46, 'succeed', {
      execution: 1,
      peerId: 'p1',
      fields: { finishedAt: new Date().toISOString() },
    });
    const second = Buffer.from(JSON.stringify(runBody(46, { params: { again: true } })));
    expect((await post(46, second)).status).toBe(200);
    expect(await store.get(46)).toMatchObject({ state: 'queued', execution: 2, finishedAt: '' });
    expect((await store.request(46))?.equals(second)).toBe(true);
    expect((await gw.runsQueue.getJob(runJobId(46, 2)))?.data).toEqual({ runId: 46, execution: 2 });
  });

  it('when the body is 20 MB (a 5 MB task archive) then it is accepted and stored intact', async () => {
    const archive = Buffer.alloc(5_000_000);
    for (let i = 0; i < archive.length; i++) archive[i] = (i * 7919) % 256;
    const raw = Buffer.from(JSON.stringify(runBody(47, { codeArchive: archive.toJSON() })));
    expect(raw.length).toBeGreaterThan(17_000_000);
    // The submit budget (1.5 s from arrival) would count the upload, which in
    // this one thread is far slower than on a network; this test is about size.
    const roomy = await startGateway(redisServer.url, pki, {
      submitBudgetMs: 30_000,
      prefix: gw.keys.prefix,
    });
    const res = await call(pki, roomy.port, '/rps/run/47', { method: 'POST', body: raw }).finally(() =>
      roomy.close(),
    );
    expect(res.status).toBe(200);
    // How fast is the benchmark's question (bench/gateway, docs/gateway.md), not this test's:
    // a time bound here failed on a loaded CI machine without any change to the gateway.
    // Compared by digest inside Redis: reading 18 MB back makes ioredis's parser
    // keep a shrink timer alive for seconds after the suite ends.
    const digest = await gw.redis.eval(
      "return redis.sha1hex(redis.call('GET', KEYS[1]))",
      1,
      gw.keys.runRequest(47),
    );
    expect(digest).toBe(createHash('sha1').update(raw).digest('hex'));
  });

  it.each([
    ['state is missing', { state: undefined }, 'state'],
    ['taskId is not an integer', { taskId: 'seven' }, 'taskId'],
    [
      'codeArchive has a byte out of range',
      { codeArchive: { type: 'Buffer', data: [1, 300] } },
      'codeArchive.data.1',
    ],
    ['subtype is not a string', { subtype: 3 }, 'subtype'],
  ])(
    'when %s then it is a 400 JSON naming the field and nothing is stored',
    async (_what, override, path) => {
      const res = await post(48, JSON.stringify(runBody(48, override)));
      expect(res.status).toBe(400);
      expect(res.json()).toMatchObject({
        code: 'invalid_request',
        details: [expect.objectContaining({ path })],
      });
      expect(await store.get(48)).toBeNull();
    },
  );

  it('when the body is not JSON then it is a 400 JSON', async () => {
    const res = await post(49, '{"params": ');
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ code: 'invalid_json', error: 'request body is not valid JSON' });
  });

  it.each(['042', '-1', '4.2', 'abc', '99999999999999999999'])(
    'when the run id is %p then it is a 400 naming run_id',
    async (id) => {
      const res = await post(id, JSON.stringify(runBody(1)));
      expect(res.status).toBe(400);
      expect(res.json()).toMatchObject({ code: 'invalid_request', details: [{ path: 'run_id' }] });
    },
  );

  it('when the body is over the configured limit then it is a 413 JSON and nothing is stored', async () => {
    const small = await startGateway(redisServer.url, pki, { bodyLimit: 1024 });
    try {
      const raw = JSON.stringify(runBody(50, { params: { pad: 'x'.repeat(2048) } }));
      const res = await call(pki, small.port, '/rps/run/50', { method: 'POST', body: raw });
      expect(res.status).toBe(413);
      expect(res.json()).toMatchObject({ code: 'entity.too.large' });
      expect(await new RunStore(small.redis, small.keys).get(50)).toBeNull();
    } finally {
      await small.close();
    }
  });

  it('when the content type is missing then the body is still read as JSON', async () => {
    const raw = JSON.stringify(runBody(51));
    const res = await call(pki, gw.port, '/rps/run/51', {
      method: 'POST',
      body: raw,
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.status).toBe(200);
    expect((await store.request(51))?.toString()).toBe(raw);
  });

  it('when the job cannot be queued after the run was recorded then the POST fails and the run is failed, not left for reconciliation to start', async () => {
    // BullMQ's add script fails on keys of the wrong type (WRONGTYPE); the run
    // store's keys are untouched.
    await gw.redis.set(gw.runsQueue.keys.wait!, 'not a list');
    await gw.redis.set(gw.runsQueue.keys.events!, 'not a stream');
    const res = await post(52, JSON.stringify(runBody(52)));
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(await store.get(52)).toMatchObject({
      state: 'failed',
      execution: 1,
      error: expect.stringMatching(/^run not accepted: /),
    });
    // IVIS-core, which gave up on the POST, sees the same when it asks.
    const status = await call(pki, gw.port, '/rps/run/52');
    expect(JSON.parse(status.body.toString())).toMatchObject({ status: 2 });
  });
});
