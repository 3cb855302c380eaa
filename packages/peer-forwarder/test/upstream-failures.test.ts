import https from 'node:https';
import tls from 'node:tls';
import { createCa, issueCertificate, listen } from '@rps/common';
import { createTestPki, startRedisServer, testLogger, type TestRedisServer } from '@rps/common/testing';
import {
  send,
  startForwarder,
  startTlsUpstream,
  type TestForwarder,
  type TlsUpstream,
} from './support/harness';

// Upstream failures become JSON answers: 504 for slowness, 502 naming the cause otherwise.
describe('peer-forwarder upstream failures', () => {
  const pki = createTestPki();
  let redisServer: TestRedisServer;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    redisServer = await startRedisServer();
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  afterAll(async () => {
    await redisServer.stop();
    pki.cleanup();
  });

  async function forwarderTo(upstream: string, headersTimeoutMs = 10_000): Promise<TestForwarder> {
    const fwd = await startForwarder({
      pki,
      redisUrl: redisServer.url,
      routes: { sandbox: upstream },
      allow: ['127.0.0.0/8'],
      tuning: { headersTimeoutMs },
    });
    cleanups.push(() => fwd.close());
    return fwd;
  }

  /** A small status push from an allowed peer, the request most of these failures hit. */
  const pushStatus = (fwd: TestForwarder) =>
    send(fwd.ports.sandbox!, { method: 'POST', path: '/rest/remote/status', body: '{}' });

  async function upstreamWith(...args: Parameters<typeof startTlsUpstream>): Promise<TlsUpstream> {
    const upstream = await startTlsUpstream(...args);
    cleanups.push(() => upstream.close());
    return upstream;
  }

  it('when the upstream does not answer within the headers timeout then the peer gets 504 JSON', async () => {
    const upstream = await upstreamWith(pki, () => undefined);
    const fwd = await forwarderTo(upstream.url, 300);
    const started = Date.now();
    const answer = await send(fwd.ports.sandbox!, { path: '/slow' });
    expect(answer.status).toBe(504);
    expect(answer.json()).toMatchObject({
      code: 'upstream_timeout',
      error: expect.stringContaining('300 ms'),
    });
    expect(Date.now() - started).toBeLessThan(3000);
    const metrics = await send(fwd.adminPort, { path: '/metrics' });
    expect(metrics.text).toMatch(/rps_forwarder_upstream_errors_total\{route="sandbox",kind="timeout"\} 1/);
  });

  it('when the upstream certificate is not from the configured CA then the peer gets 502 upstream_tls', async () => {
    const foreign = issueCertificate(createCa({ commonName: 'Other CA' }), {
      commonName: 'ivis',
      ips: ['127.0.0.1'],
    });
    const upstream = await upstreamWith(pki, undefined, foreign);
    const fwd = await forwarderTo(upstream.url);
    const answer = await send(fwd.ports.sandbox!, { path: '/' });
    expect(answer.status).toBe(502);
    expect(answer.json()).toMatchObject({
      code: 'upstream_tls',
      error: expect.stringMatching(/SIGNATURE|ISSUER/),
    });
    expect(upstream.seen).toHaveLength(0);
  });

  it('when the upstream certificate does not name the upstream host then the peer gets 502 upstream_tls', async () => {
    const wrongName = issueCertificate(pki.ca, { commonName: 'ivis', dnsNames: ['ivis.example.org'] });
    const upstream = await upstreamWith(pki, undefined, wrongName);
    const fwd = await forwarderTo(upstream.url);
    const answer = await send(fwd.ports.sandbox!, { path: '/' });
    expect(answer.status).toBe(502);
    expect(answer.json()).toMatchObject({
      code: 'upstream_tls',
      error: expect.stringContaining('ERR_TLS_CERT_ALTNAME_INVALID'),
    });
  });

  it('when the upstream rejects the pool certificate then the peer gets 502 upstream_tls', async () => {
    const otherCa = createCa({ commonName: 'IVIS elsewhere' });
    const server = https.createServer(
      {
        cert: pki.server.cert,
        key: pki.server.key,
        ca: otherCa.cert,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (_req, res) => res.end('{}'),
    );
    const { port } = await listen(server, { host: '127.0.0.1', port: 0 }, testLogger());
    cleanups.push(async () => {
      server.closeAllConnections();
      server.close();
    });
    const fwd = await forwarderTo(`https://127.0.0.1:${port}`);
    const answer = await pushStatus(fwd);
    expect(answer.status).toBe(502);
    expect(answer.json()).toMatchObject({ code: expect.stringMatching(/^upstream_(tls|reset)$/) });
  });

  it('when the upstream dies in the middle of a response body then the peer sees a cut connection, not a clean end', async () => {
    const upstream = await upstreamWith(pki, (_req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      res.write(Buffer.alloc(1000));
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const fwd = await forwarderTo(upstream.url);
    await expect(send(fwd.ports.sandbox!, { path: '/big' })).rejects.toThrow(
      /aborted|socket hang up|ECONNRESET/,
    );
    const line = fwd.logs.find((l) => l.msg === 'access');
    expect(line).toMatchObject({ status: 200, error: expect.stringContaining('response cut') });
  });

  it('when the upstream answers with a malformed head then the peer gets 502 upstream_error naming the problem', async () => {
    // Raw TLS (client certificate required) so the answer's bytes are exactly these.
    const server = tls.createServer(
      {
        cert: pki.server.cert,
        key: pki.server.key,
        ca: pki.ca.cert,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (socket) => {
        socket.once('data', () =>
          socket.write('HTTP/1.1 200 OK\r\nbad header: x\r\ncontent-length: 2\r\n\r\n{}'),
        );
        socket.on('error', () => undefined);
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
        }),
    );
    const { port } = server.address() as { port: number };
    const fwd = await forwarderTo(`https://127.0.0.1:${port}`);
    const answer = await pushStatus(fwd);
    expect(answer.status).toBe(502);
    expect(answer.json()).toMatchObject({
      code: 'upstream_error',
      error: expect.stringContaining('invalid header name'),
    });
    const metrics = await send(fwd.adminPort, { path: '/metrics' });
    expect(metrics.text).toMatch(/rps_forwarder_upstream_errors_total\{route="sandbox",kind="protocol"\} 1/);
  });
});
