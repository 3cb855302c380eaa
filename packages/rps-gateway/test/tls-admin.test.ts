import http from 'node:http';
import { X509Certificate } from 'node:crypto';
import { decimalSerial } from '@rps/common';
import { createTestPki, startRedisServer, type TestPki, type TestRedisServer } from '@rps/common/testing';
import { call, runBody, startGateway, type TestGateway } from './gateway-harness';

function adminGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('the public mTLS listener and the admin listener', () => {
  let redisServer: TestRedisServer;
  let pki: TestPki;
  let gw: TestGateway;

  beforeAll(async () => {
    pki = createTestPki();
    redisServer = await startRedisServer();
    gw = await startGateway(redisServer.url, pki);
  });
  afterAll(async () => {
    await gw.close();
    await redisServer.stop();
    pki.cleanup();
  });

  it('when the client presents no certificate then the handshake is refused', async () => {
    await expect(call(pki, gw.port, '/rps/run/1', { client: null })).rejects.toThrow();
  });

  it('when the client certificate is from a foreign CA then the handshake is refused', async () => {
    await expect(call(pki, gw.port, '/rps/run/1', { client: pki.foreignClient })).rejects.toThrow();
  });

  it('when the client certificate has expired then the handshake is refused', async () => {
    await expect(call(pki, gw.port, '/rps/run/1', { client: pki.expiredClient })).rejects.toThrow();
  });

  it.each(['TLSv1.2', 'TLSv1.3'] as const)(
    'when the client speaks only %s then it is served',
    async (version) => {
      const res = await call(pki, gw.port, '/rps/run/1', { minVersion: version, maxVersion: version });
      expect(res.status).toBe(404);
      expect(res.json()).toMatchObject({ code: 'run_not_found' });
    },
  );

  it('when the client certificate’s serial is revoked then it is a 401 JSON and nothing is done', async () => {
    const revoked = pki.issue('revoked-ivis');
    await gw.redis.sadd(gw.keys.revokedSerials(), decimalSerial(new X509Certificate(revoked.cert)));
    const res = await call(pki, gw.port, '/rps/run/60', {
      method: 'POST',
      body: JSON.stringify(runBody(60)),
      client: revoked,
    });
    expect(res.status).toBe(401);
    expect(res.json()).toMatchObject({ code: 'certificate_revoked' });
    expect(await gw.redis.exists(gw.keys.run(60))).toBe(0);
    // The valid certificate still gets in.
    expect((await call(pki, gw.port, '/rps/run/60')).status).toBe(404);
  });

  it('when requests are served then the admin listener reports ready and the gateway metrics', async () => {
    await call(pki, gw.port, '/rps/run/61', { method: 'POST', body: JSON.stringify(runBody(61)) });
    await call(pki, gw.port, '/rps/run/61', { method: 'POST', body: JSON.stringify(runBody(61)) });
    expect((await adminGet(gw.adminPort, '/healthz')).status).toBe(200);
    expect(await adminGet(gw.adminPort, '/readyz')).toMatchObject({ status: 200 });
    const metrics = (await adminGet(gw.adminPort, '/metrics')).body;
    expect(metrics).toMatch(
      /rps_gateway_requests_total\{route="\/rps\/run\/:run_id",method="POST",status="200"\} 2/,
    );
    expect(metrics).toMatch(/rps_gateway_runs_accepted_total\{outcome="created"\} 1/);
    expect(metrics).toMatch(/rps_gateway_runs_accepted_total\{outcome="existing"\} 1/);
    expect(metrics).toMatch(/rps_gateway_queue_depth\{state="waiting"\} 1/);
    // The revoked client's POST of the test before counts too: a run request the
    // certificate guard refuses is still a run request (and its 401 is labelled so).
    expect(metrics).toMatch(
      /rps_gateway_requests_total\{route="\/rps\/run\/:run_id",method="POST",status="401"\} 1/,
    );
    expect(metrics).toMatch(
      /rps_gateway_request_duration_seconds_count\{route="\/rps\/run\/:run_id",method="POST"\} 3/,
    );
  });

  it('when Redis is down then requests fail closed with 503 and readiness says not ready', async () => {
    // A new connection must be checked against the revocation list, which Redis holds: fail closed.
    await redisServer.kill();
    try {
      const res = await call(pki, gw.port, '/rps/run/62');
      expect(res.status).toBe(503);
      expect(res.json()).toMatchObject({ code: 'redis_unavailable', details: [{ path: 'redis' }] });
      const ready = await adminGet(gw.adminPort, '/readyz');
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.body)).toMatchObject({ checks: { redis: expect.any(String) } });
      expect((await adminGet(gw.adminPort, '/metrics')).status).toBe(200);
    } finally {
      await redisServer.restart();
    }
  });
});
