import { X509Certificate } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { decimalSerial, RunStore } from '@rps/common';
import { createTestPki, startRedisServer, type TestPki, type TestRedisServer } from '@rps/common/testing';
import { call, runBody, startGateway, type CallOptions, type TestGateway } from './gateway-harness';

/**
 * The run POST's lane (src/http/run-submit.lane.ts) serves `/rps/run/<id>`
 * outside Express; Express serves the same route in the shapes the lane
 * leaves to it (here: a trailing slash, which Express's non-strict routing
 * matches, and a compressed body). Both must answer every case alike.
 */
describe('POST /rps/run/:run_id: the lane and the Express route', () => {
  let redisServer: TestRedisServer;
  let pki: TestPki;
  let gw: TestGateway;
  let store: RunStore;
  let nextRun = 1000;
  let revoked: { cert: string; key: string };
  let stranger: { cert: string; key: string };

  beforeAll(async () => {
    pki = createTestPki();
    redisServer = await startRedisServer();
    gw = await startGateway(redisServer.url, pki, { bodyLimit: 4096 });
    store = new RunStore(gw.redis, gw.keys);
    revoked = pki.issue('revoked-ivis');
    stranger = pki.issue('someone-else');
    await gw.redis.sadd(gw.keys.revokedSerials(), decimalSerial(new X509Certificate(revoked.cert)));
  });
  afterAll(async () => {
    await gw.close();
    await redisServer.stop();
    pki.cleanup();
  });

  /** The parts of an answer a client can tell apart. */
  const answer = async (path: string, options: CallOptions) => {
    const res = await call(pki, gw.port, path, { method: 'POST', ...options });
    return {
      status: res.status,
      body: res.body.length === 0 ? '' : res.json(),
      contentType: res.headers['content-type'],
      retryAfter: res.headers['retry-after'],
      requestId: typeof res.headers['x-request-id'],
    };
  };

  const cases: Array<[string, (runId: number) => CallOptions]> = [
    ['a valid body', (runId) => ({ body: JSON.stringify(runBody(runId)) })],
    ['a body that is not JSON', () => ({ body: '{"params": ' })],
    ['a body without a taskId', (runId) => ({ body: JSON.stringify(runBody(runId, { taskId: undefined })) })],
    [
      'a body over the limit',
      (runId) => ({ body: JSON.stringify(runBody(runId, { pad: 'x'.repeat(5000) })) }),
    ],
    ['a JSON array instead of an object', () => ({ body: '[1, 2]' })],
    ['a revoked client certificate', (runId) => ({ body: JSON.stringify(runBody(runId)), client: revoked })],
    [
      'a certificate of the CA that is not an allowed client',
      (runId) => ({ body: JSON.stringify(runBody(runId)), client: stranger }),
    ],
  ];

  it.each(cases)('when %s is posted then both answer alike', async (_name, options) => {
    const [laneRun, expressRun] = [nextRun++, nextRun++];
    const lane = await answer(`/rps/run/${laneRun}`, options(laneRun));
    const express = await answer(`/rps/run/${expressRun}/`, options(expressRun));
    expect(lane).toEqual(express);
    if (lane.status === 200) {
      expect(await store.get(laneRun)).toMatchObject({ state: 'queued', execution: 1 });
      expect(await store.get(expressRun)).toMatchObject({ state: 'queued', execution: 1 });
    }
  });

  it('when a valid body is posted then the lane echoes a sane x-request-id and Express does the same', async () => {
    const [laneRun, expressRun] = [nextRun++, nextRun++];
    const headers = { 'x-request-id': 'trace-lane.1' };
    const lane = await call(pki, gw.port, `/rps/run/${laneRun}`, {
      method: 'POST',
      body: JSON.stringify(runBody(laneRun)),
      headers,
    });
    const express = await call(pki, gw.port, `/rps/run/${expressRun}/`, {
      method: 'POST',
      body: JSON.stringify(runBody(expressRun)),
      headers,
    });
    expect([lane.status, lane.headers['x-request-id']]).toEqual([200, 'trace-lane.1']);
    expect([express.status, express.headers['x-request-id']]).toEqual([200, 'trace-lane.1']);
  });

  it('when the body is gzip-compressed then Express inflates it and the run stores the inflated bytes', async () => {
    const runId = nextRun++;
    const raw = Buffer.from(JSON.stringify(runBody(runId)));
    const res = await call(pki, gw.port, `/rps/run/${runId}`, {
      method: 'POST',
      body: gzipSync(raw),
      headers: { 'content-encoding': 'gzip' },
    });
    expect(res.status).toBe(200);
    expect((await store.request(runId))?.equals(raw)).toBe(true);
  });

  it('when the run id is not canonical then Express answers 400 naming run_id, as before the lane', async () => {
    const res = await call(pki, gw.port, '/rps/run/01', { method: 'POST', body: JSON.stringify(runBody(1)) });
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ code: 'invalid_request', details: [{ path: 'run_id' }] });
  });
});
