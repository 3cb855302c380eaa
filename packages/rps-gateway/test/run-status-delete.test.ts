import { RunStore, runJobId } from '@rps/common';
import { createTestPki, startRedisServer, type TestPki, type TestRedisServer } from '@rps/common/testing';
import { call, controlCommands, runBody, startGateway, type TestGateway } from './gateway-harness';

describe('GET and DELETE /rps/run/:run_id', () => {
  let redisServer: TestRedisServer;
  let pki: TestPki;
  let gw: TestGateway;
  let store: RunStore;

  beforeAll(async () => {
    pki = createTestPki();
    redisServer = await startRedisServer();
  });
  beforeEach(async () => {
    gw = await startGateway(redisServer.url, pki, { stopAckTimeoutMs: 3000 });
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
  const start = async (runId: number, peerId = 'peer-1') => {
    expect((await store.apply(runId, 'dispatch', { execution: 1, peerId })).ok).toBe(true);
    expect((await store.apply(runId, 'start', { execution: 1, peerId })).ok).toBe(true);
  };

  it('when the run is unknown then GET is a 404 JSON', async () => {
    const res = await call(pki, gw.port, '/rps/run/999');
    expect(res.status).toBe(404);
    expect(res.json()).toMatchObject({ code: 'run_not_found', error: 'run 999 not found' });
  });

  it('when the id is malformed then GET is a 400 naming run_id', async () => {
    const res = await call(pki, gw.port, '/rps/run/0x10');
    expect(res.status).toBe(400);
    expect(res.json().details).toEqual([expect.objectContaining({ path: 'run_id' })]);
  });

  it('when the run is queued then GET answers QUEUED (4) without finished_at', async () => {
    await submit(42);
    const res = await call(pki, gw.port, '/rps/run/42');
    expect(res.status).toBe(200);
    expect(res.json()).toStrictEqual({ status: 4, output: '', error: '' });
  });

  it('when the run is running with output then GET answers TV3', async () => {
    await submit(43);
    await start(43);
    await store.appendOutput(43, 1, 'step 1\n');
    expect((await call(pki, gw.port, '/rps/run/43')).json()).toStrictEqual({
      status: 3,
      output: 'step 1\n',
      error: '',
    });
  });

  it('when the run succeeded then GET answers SUCCESS with finished_at', async () => {
    await submit(44);
    await start(44);
    await store.appendOutput(44, 1, 'step 1\ndone\n');
    const finishedAt = '2023-07-13T21:55:21.123Z';
    await store.apply(44, 'succeed', { execution: 1, peerId: 'peer-1', fields: { finishedAt } });
    expect((await call(pki, gw.port, '/rps/run/44')).json()).toStrictEqual({
      status: 0,
      output: 'step 1\ndone\n',
      error: '',
      finished_at: finishedAt,
    });
  });

  it('when a run is deleted twice, or was never known, then every DELETE is 200 and the run is gone', async () => {
    await submit(45);
    for (let i = 0; i < 2; i++) {
      expect((await call(pki, gw.port, '/rps/run/45', { method: 'DELETE' })).status).toBe(200);
    }
    expect((await call(pki, gw.port, '/rps/run/12345', { method: 'DELETE' })).status).toBe(200);
    expect((await call(pki, gw.port, '/rps/run/45')).status).toBe(404);
    expect(await store.request(45)).toBeNull();
  });

  it('when a queued run is deleted then its waiting job is removed too', async () => {
    await submit(46);
    expect(await gw.runsQueue.getJob(runJobId(46, 1))).toBeDefined();
    await call(pki, gw.port, '/rps/run/46', { method: 'DELETE' });
    expect(await gw.runsQueue.getJob(runJobId(46, 1))).toBeUndefined();
  });

  it('when a running run is deleted then its peer gets a deleteRun command', async () => {
    await submit(47);
    await start(47, 'peer-7');
    expect((await call(pki, gw.port, '/rps/run/47', { method: 'DELETE' })).status).toBe(200);
    expect(await controlCommands(gw.redis, gw.keys, 'peer-7')).toEqual([
      { kind: 'deleteRun', id: expect.any(String), runId: 47 },
    ]);
    expect(await gw.redis.sismember(gw.keys.peerRuns('peer-7'), '47')).toBe(0);
  });

  it('when a finished run is deleted then its peer is not bothered', async () => {
    await submit(48);
    await start(48, 'peer-8');
    await store.apply(48, 'fail', { execution: 1, peerId: 'peer-8' });
    await call(pki, gw.port, '/rps/run/48', { method: 'DELETE' });
    expect(await controlCommands(gw.redis, gw.keys, 'peer-8')).toEqual([]);
  });

  it('when a DELETE arrives while a stop of the same run is still waiting for its peer then it answers at once', async () => {
    await submit(49);
    await start(49, 'silent-peer');
    const started = Date.now();
    const stop = call(pki, gw.port, '/rps/run/49/stop', { method: 'POST', body: '{"timeout":2000}' });
    // Let the stop reach its wait for the acknowledgement.
    await new Promise((r) => setTimeout(r, 300));
    const deletes = await Promise.all(
      [1, 2, 3].map(() => call(pki, gw.port, '/rps/run/49', { method: 'DELETE' })),
    );
    const deletedAfter = Date.now() - started;
    expect(deletes.map((d) => d.status)).toEqual([200, 200, 200]);
    expect(deletedAfter).toBeLessThan(1500);
    expect((await call(pki, gw.port, '/rps/run/49')).status).toBe(404);
    const stopped = await stop;
    expect(stopped.status).toBe(503);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2900);
  });
});
