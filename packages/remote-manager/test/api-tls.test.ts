import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { closeServer } from '@rps/common';
import { createTestPki, startRedisServer, type TestPki, type TestRedisServer } from '@rps/common/testing';
import { startTestManager, TEST_TOKEN, type TestManager } from './support/manager-harness';

function get(
  url: string,
  pki: TestPki,
  options: { cert?: string; key?: string; token?: string },
): Promise<{ status: number; body: { code?: string; peers?: unknown[] } }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${url}/api/peers`,
      {
        ca: pki.ca.cert,
        ...(options.cert ? { cert: options.cert, key: options.key } : {}),
        headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
        agent: false,
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { code?: string } }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

// manager.tls: operators' client certificates as the alternative to the token.
describe('remote-manager over HTTPS with client certificates', () => {
  let server: TestRedisServer;
  let pki: TestPki;
  let m: TestManager;
  let httpsServer: https.Server;
  let url: string;
  let operator: { cert: string; key: string };

  beforeAll(async () => {
    server = await startRedisServer();
    pki = createTestPki();
    operator = pki.issue('operator-1');
    m = await startTestManager(server.url, {
      token: null,
      clientCertificates: [
        { name: 'operator-1', fingerprint256: new X509Certificate(operator.cert).fingerprint256 },
      ],
    });
    httpsServer = https.createServer(
      {
        cert: pki.server.cert,
        key: pki.server.key,
        ca: pki.ca.cert,
        requestCert: true,
        rejectUnauthorized: false,
      },
      m.manager.app,
    );
    await new Promise<void>((r) => httpsServer.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(httpsServer.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await closeServer(httpsServer);
    await m?.close();
    await server?.stop();
    pki?.cleanup();
  });

  it('when a named client certificate is presented then /api answers without a token', async () => {
    const res = await get(url, pki, operator);
    expect(res.status).toBe(200);
    expect(res.body.peers).toEqual([]);
  });

  it('when the certificate is not named, not of the CA, or no token mode applies then 401', async () => {
    const other = pki.issue('someone-else');
    expect((await get(url, pki, other)).body.code).toBe('unauthorized');
    expect((await get(url, pki, pki.foreignClient)).status).toBe(401);
    expect((await get(url, pki, {})).status).toBe(401);
    expect((await get(url, pki, { token: TEST_TOKEN })).status).toBe(401);
  });

  it('when the named certificate is revoked then it is refused at once', async () => {
    const serial = BigInt(`0x${new X509Certificate(operator.cert).serialNumber}`).toString(10);
    await m.redis.sadd(m.keys.revokedSerials(), serial);
    const res = await get(url, pki, operator);
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('certificate_revoked');
  });
});
