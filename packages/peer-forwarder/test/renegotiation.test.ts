import { X509Certificate } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { closeServer, listen } from '@rps/common';
import { createTestPki, startRedisServer, testLogger, type TestRedisServer } from '@rps/common/testing';
import { startApacheFront, type ApacheFront } from './support/apache';
import { send, startForwarder, type TestForwarder } from './support/harness';

// IVIS-core's Apache asks for the client certificate only under /rest/remote,
// by a TLS 1.2 renegotiation on a connection that started without one
// (FACTS.md). Node's TLS server cannot play that part, so this is Apache.
describe('peer-forwarder against Apache with per-location client auth (renegotiation)', () => {
  const pki = createTestPki();
  const seen: Array<{ url: string; headers: IncomingHttpHeaders; bytes: number }> = [];
  let backend: http.Server;
  let apache: ApacheFront;
  let redisServer: TestRedisServer;
  let fwd: TestForwarder;
  const decimalSerial = BigInt(`0x${new X509Certificate(pki.server.cert).serialNumber}`).toString(10);

  beforeAll(async () => {
    backend = http.createServer((req, res) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', headers: req.headers, bytes });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ bytes, serial: req.headers['x-ivis-cert-serial'] ?? null }));
      });
    });
    const { port } = await listen(backend, { host: '127.0.0.1', port: 0 }, testLogger());
    apache = await startApacheFront(pki, port);
    redisServer = await startRedisServer();
    // One upstream connection: the second request must renegotiate on a live,
    // already used connection, as happens in production.
    fwd = await startForwarder({
      pki,
      redisUrl: redisServer.url,
      routes: { trusted: apache.url },
      allow: ['127.0.0.0/8'],
      tuning: { connections: 1 },
    });
  }, 30_000);

  afterAll(async () => {
    await fwd?.close();
    await redisServer?.stop();
    await apache?.stop();
    backend?.closeAllConnections();
    if (backend) await closeServer(backend);
    pki.cleanup();
  });

  it('when Apache is asked for /rest/remote without a client certificate then it refuses (the test upstream really demands one)', async () => {
    const outcome = await new Promise<string>((resolve) => {
      https
        .get(`${apache.url}/rest/remote/status`, { ca: pki.ca.cert, agent: false }, (res) => {
          res.resume();
          resolve(`status ${res.statusCode}`);
        })
        .on('error', (err) => resolve(`error ${err.message}`));
    });
    expect(outcome).not.toBe('status 200');
  });

  it('when a peer pushes to /rest/remote after a plain request on the same connection then the forwarder answers the renegotiation and IVIS sees the pool serial only', async () => {
    const probe = await send(fwd.ports.trusted!, { path: '/' });
    expect(probe.status).toBe(200);
    expect(probe.json().serial).toBeNull();
    const push = await send(fwd.ports.trusted!, {
      method: 'POST',
      path: '/rest/remote/status',
      headers: {
        'content-type': 'application/json',
        'x-ivis-cert-serial': '{ serialNumber 1, issuer rdnSequence:"CN=forged" }',
      },
      body: JSON.stringify({ runId: 42, status: { status: 0 } }),
    });
    expect(push.status).toBe(200);
    const serial = String(push.json().serial);
    expect(serial).toMatch(new RegExp(`^\\{ serialNumber ${decimalSerial},`));
    expect(serial).not.toContain('forged');
    expect(apache.errorLog()).toMatch(/re-negotiation/i);
  });

  /**
   * Pushes status bodies with `outputBytes` of output, one after another,
   * through a fresh forwarder (one upstream connection), so the first rides
   * on the connection's first renegotiation; each must arrive whole with the
   * pool's serial.
   */
  async function pushThroughFreshForwarder(outputBytes: number, times: number): Promise<void> {
    const fresh = await startForwarder({
      pki,
      redisUrl: redisServer.url,
      routes: { trusted: apache.url },
      allow: ['127.0.0.0/8'],
      tuning: { connections: 1 },
    });
    try {
      for (let i = 0; i < times; i++) {
        const body = JSON.stringify({ runId: 7 + i, status: { status: 0 }, output: 'x'.repeat(outputBytes) });
        const push = await send(fresh.ports.trusted!, {
          method: 'POST',
          path: '/rest/remote/status',
          headers: { 'content-type': 'application/json' },
          body,
        });
        expect(push.status).toBe(200);
        expect(push.json()).toMatchObject({
          bytes: Buffer.byteLength(body),
          serial: expect.stringContaining(decimalSerial),
        });
      }
    } finally {
      await fresh.close();
    }
  }

  it('when the push carries a 100 kB body while the renegotiation happens then the body arrives whole', async () => {
    await pushThroughFreshForwarder(100_000, 1);
  });

  it('when a final push carries 1 MB of output on a connection not yet renegotiated then Apache does not refuse it with 413', async () => {
    // Apache holds the body during the renegotiation only up to
    // SSLRenegBufferSize (128 KiB by default), then answers 413; the pool sends
    // a bodiless HEAD first on such a connection (upstream-pool.service.ts).
    // The second push rides on the renegotiated connection.
    await pushThroughFreshForwarder(1_100_000, 2);
  });
});
