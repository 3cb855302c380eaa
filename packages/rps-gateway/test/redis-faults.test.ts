import https from 'node:https';
import { RunStore, runJobId } from '@rps/common';
import {
  createTestPki,
  startRedisProxy,
  startRedisServer,
  waitFor,
  type RedisProxy,
  type TestPki,
  type TestRedisServer,
} from '@rps/common/testing';
import { call, runBody, startGateway, type TestGateway } from './gateway-harness';

// Redis failing under the gateway (DESIGN.md guarantee 1, issue 10 items 3
// and 4): every unavailability is a 503 JSON with Retry-After, never a 500,
// and a run POST answers 200 only for a run that was recorded, queued and
// acknowledged; any other answer leaves a run that never starts.
describe('gateway while Redis fails', () => {
  let redisServer: TestRedisServer;
  let pki: TestPki;
  let gw: TestGateway | undefined;
  let proxy: RedisProxy | undefined;
  let agent: https.Agent;

  beforeAll(async () => {
    pki = createTestPki();
    redisServer = await startRedisServer({ debug: true });
  });
  beforeEach(() => {
    // One keep-alive connection: its revocation verdict is taken while Redis
    // is up, so the requests under test reach the run routes.
    agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  });
  afterEach(async () => {
    agent.destroy();
    await gw?.close();
    await proxy?.close();
    gw = undefined;
    proxy = undefined;
  });
  afterAll(async () => {
    await redisServer.stop();
    pki.cleanup();
  });

  const post = (g: TestGateway, runId: number, body = JSON.stringify(runBody(runId))) =>
    call(pki, g.port, `/rps/run/${runId}`, { method: 'POST', body, agent });
  const warmUp = async (g: TestGateway) =>
    expect((await call(pki, g.port, '/rps/run/1', { agent })).status).toBe(404);

  it('when Redis is down then POST, GET and DELETE answer 503 redis_unavailable with Retry-After, and it recovers by itself', async () => {
    const server = await startRedisServer();
    try {
      gw = await startGateway(server.url, pki);
      const g = gw;
      await warmUp(g);
      await server.kill();
      for (const res of [
        await post(g, 60),
        await call(pki, g.port, '/rps/run/60', { agent }),
        await call(pki, g.port, '/rps/run/60', { method: 'DELETE', agent }),
        await call(pki, g.port, '/rps/task/7', { method: 'DELETE', agent }),
      ]) {
        expect(res.status).toBe(503);
        expect(res.headers['retry-after']).toBe('1');
        expect(res.json()).toMatchObject({
          code: 'redis_unavailable',
          error: expect.stringMatching(/^Redis is unavailable: /),
          details: [{ path: 'redis', message: 'connection' }],
        });
      }
      await server.restart();
      // Reconnecting takes ioredis up to its 2 s backoff; nobody restarts the gateway.
      await waitFor('a POST accepted after the restart', async () => (await post(g, 61)).status === 200, {
        timeoutMs: 10_000,
      });
      expect(await new RunStore(g.redis, g.keys).get(61)).toMatchObject({
        state: 'queued',
        pendingSince: '',
      });
    } finally {
      await server.stop();
    }
  });

  // Submit reply lost after the script ran: ioredis aborts the MULTI (or,
  // when none of it was answered, resends it once reconnected), and the
  // gateway's own retry goes through the submit (existing, still pending)
  // again. Drop right after the job was added: the acknowledgement fails at
  // once (no offline queue) and the retry does the same.
  it.each([
    ['before the submit reply', false],
    ['right after the job was added', true],
  ])(
    'when the connection drops %s then the POST is retried and answers 200 as existing',
    async (_when, deliverReply) => {
      const refuseMs = 300;
      proxy = await startRedisProxy(redisServer.port);
      gw = await startGateway(proxy.url, pki, { inspectUrl: redisServer.url });
      const g = gw;
      const store = new RunStore(g.redis, g.keys);
      await warmUp(g);
      const runId = deliverReply ? 67 : 62;
      // On the wire, the run's record key (a key of the submit script, which also adds
      // the job: run-submit-enqueue-n.lua) marks the submit's MULTI; the EXEC's reply
      // carries the script's `created`.
      const cut = proxy.cutAfterReplyTo(`${g.keys.run(runId)}\r\n`, {
        refuseMs,
        deliverReply,
        replyIncluding: 'created',
      });
      const res = await post(g, runId);
      await cut;
      expect(res.status).toBe(200);
      expect(await store.get(runId)).toMatchObject({ state: 'queued', execution: 1, pendingSince: '' });
      expect((await g.runsQueue.getJob(runJobId(runId, 1)))?.data).toEqual({ runId, execution: 1 });
      expect(await g.runsQueue.getJobCounts('waiting')).toEqual({ waiting: 1 });
    },
  );

  it('when the connection is down as the POST arrives and back within the budget then the POST waits for it and answers 200', async () => {
    proxy = await startRedisProxy(redisServer.port);
    gw = await startGateway(proxy.url, pki, { inspectUrl: redisServer.url });
    const g = gw;
    await warmUp(g);
    // Down for less than the 1.5 s budget: ioredis reconnects on its own backoff.
    proxy.refuseFor(400);
    const res = await post(g, 68);
    expect(res.status).toBe(200);
    expect(await new RunStore(g.redis, g.keys).get(68)).toMatchObject({ state: 'queued', pendingSince: '' });
  });

  it('when the connection stays down past the budget then the POST answers 503 and the run can never start', async () => {
    proxy = await startRedisProxy(redisServer.port);
    gw = await startGateway(proxy.url, pki, { inspectUrl: redisServer.url });
    const g = gw;
    const store = new RunStore(g.redis, g.keys);
    await warmUp(g);
    const cut = proxy.cutAfterReplyTo(`${g.keys.run(63)}\r\n`, { refuseMs: 3000, replyIncluding: 'created' });
    const res = await post(g, 63);
    await cut;
    expect(res.status).toBe(503);
    expect(res.json()).toMatchObject({ code: 'redis_unavailable' });
    // Committed but never acknowledged: pending (no agent takes it) until the
    // gateway, back on Redis, fails it (or reconciliation does, after its grace).
    expect((await store.get(63))?.pendingSince).not.toBe('');
    const failed = await waitFor('the unaccepted run failed by the gateway', async () => {
      const record = await store.get(63);
      return record?.state === 'failed' ? record : null;
    });
    expect(failed).toMatchObject({
      execution: 1,
      pendingSince: '',
      error: expect.stringMatching(/^run not accepted: /),
    });
  });

  it("when Redis stalls (DEBUG SLEEP) then the POST answers 503 within IVIS-core's 2 s and the run never becomes startable", async () => {
    gw = await startGateway(redisServer.url, pki);
    const g = gw;
    const store = new RunStore(g.redis, g.keys);
    await warmUp(g);
    const sleeper = g.redis.duplicate();
    // Connected first, so the SLEEP is on the wire before the POST's TLS handshake even starts
    // (a clean-clone CI run once saw a fresh connection's SLEEP land after the submit: 200).
    await sleeper.ping();
    const sleeping = sleeper.call('DEBUG', 'SLEEP', '3');
    const res = await post(g, 64);
    // The protocol's budget, not a speed target: IVIS-core gives up at 2 s.
    expect(res.ms).toBeLessThan(2000);
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json()).toMatchObject({
      code: 'redis_unavailable',
      details: [{ path: 'redis', message: 'timeout' }],
    });
    await sleeping;
    sleeper.disconnect();
    // Redis ran the submit after it woke up; the gateway, which had given up,
    // never acknowledged it and failed it instead.
    const failed = await waitFor('the stalled submit failed by the gateway', async () => {
      const record = await store.get(64);
      return record?.state === 'failed' ? record : null;
    });
    expect(failed).toMatchObject({ execution: 1, pendingSince: '' });
    // And the gateway serves again on its own.
    expect((await post(g, 65)).status).toBe(200);
  });

  // The submit's script runs inside a MULTI (the bodies are SET beside it),
  // where a NOSCRIPT fails only that command: the gateway sends it again on
  // its own, and the staged bodies are there for it.
  it('when Redis forgets its scripts (SCRIPT FLUSH) between two POSTs then the second still answers 200 with its body stored', async () => {
    gw = await startGateway(redisServer.url, pki);
    const g = gw;
    const store = new RunStore(g.redis, g.keys);
    await warmUp(g);
    expect((await post(g, 72)).status).toBe(200);
    await g.redis.script('FLUSH');
    const body = JSON.stringify(runBody(73));
    const res = await post(g, 73, body);
    expect(res.status).toBe(200);
    expect(await store.get(73)).toMatchObject({ state: 'queued', execution: 1, pendingSince: '' });
    expect((await store.request(73))?.toString()).toBe(body);
    expect((await g.runsQueue.getJob(runJobId(73, 1)))?.data).toEqual({ runId: 73, execution: 1 });
    // Nothing staged is left behind.
    expect(await g.redis.keys(g.keys.runUpload('*'))).toEqual([]);
  });

  it('when Redis is at maxmemory with noeviction then a POST answers 503 naming memory, reads still work, and it recovers when memory is freed', async () => {
    const server = await startRedisServer();
    const fill: string[] = [];
    try {
      gw = await startGateway(server.url, pki);
      const g = gw;
      await warmUp(g);
      expect((await post(g, 70)).status).toBe(200);
      // 1 MB of filler, then a limit just under what is in use: every write
      // that needs memory is refused until the filler goes.
      const chunk = 'x'.repeat(100_000);
      for (let i = 0; i < 10; i++) {
        fill.push(`${g.keys.prefix}:filler:${i}`);
        await g.redis.set(fill[i]!, chunk);
      }
      const used = Number(/used_memory:(\d+)/.exec(await g.redis.info('memory'))?.[1]);
      await g.redis.config('SET', 'maxmemory-policy', 'noeviction');
      await g.redis.config('SET', 'maxmemory', String(used - 200_000));
      const res = await post(g, 71);
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.json()).toMatchObject({
        code: 'redis_unavailable',
        error: expect.stringMatching(/out of memory/),
        details: [{ path: 'redis', message: 'memory' }],
      });
      expect(await new RunStore(g.redis, g.keys).get(71)).toBeNull();
      expect((await call(pki, g.port, '/rps/run/70', { agent })).status).toBe(200);
      await g.redis.del(...fill);
      expect((await post(g, 71)).status).toBe(200);
    } finally {
      await server.stop();
    }
  });
});
