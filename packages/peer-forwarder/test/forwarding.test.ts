import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { createTestPki, freePort, startRedisServer, type TestRedisServer } from '@rps/common/testing';
import {
  registerPeer,
  send,
  startForwarder,
  startTlsUpstream,
  type TestForwarder,
  type TlsUpstream,
} from './support/harness';

// The forwarder between peers (plain HTTP) and a TLS upstream that requires
// the pool's client certificate. Peer 127.0.0.1 is registered; 127.0.0.9 is
// nobody; 127.0.0.0/8 is never in forwarder.allow here except where a test says so.
describe('peer-forwarder relaying', () => {
  const pki = createTestPki();
  let redisServer: TestRedisServer;
  let upstream: TlsUpstream;
  let fwd: TestForwarder;

  beforeAll(async () => {
    redisServer = await startRedisServer();
    upstream = await startTlsUpstream(pki);
    fwd = await startForwarder({
      pki,
      redisUrl: redisServer.url,
      routes: { trusted: `${upstream.url}/base` },
      allow: ['10.99.0.0/16'],
    });
    await registerPeer(fwd.redis, fwd.keys, { id: 'peer-1', address: '127.0.0.1' });
    await fwd.service.peerSync.refresh('test');
  });

  afterAll(async () => {
    await fwd.close();
    await upstream.close();
    await redisServer.stop();
    pki.cleanup();
  });

  beforeEach(() => {
    upstream.seen.length = 0;
  });

  it('when a registered peer calls then the request reaches the upstream with the pool certificate and the answer comes back', async () => {
    const answer = await send(fwd.ports.trusted!, {
      method: 'POST',
      path: '/rest/remote/status?token=secret',
      headers: { 'content-type': 'application/json', host: '10.0.0.1:10329' },
      body: JSON.stringify({ runId: 42 }),
    });
    expect(answer.status).toBe(200);
    expect(answer.json()).toMatchObject({ path: '/base/rest/remote/status?token=secret', bytes: 12 });
    const seen = upstream.seen[0]!;
    expect(seen.clientSerial).toBe(new X509Certificate(pki.server.cert).serialNumber);
    expect(seen.headers.host).toBe(`127.0.0.1:${upstream.port}`);
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe('10.0.0.1:10329');
    expect(answer.headers['x-upstream-hop']).toBeUndefined();
  });

  it('when a peer forges x-ivis-cert-serial in any spelling then no copy reaches the upstream', async () => {
    const answer = await send(fwd.ports.trusted!, {
      path: '/rest/remote/emit',
      headers: [
        'Host',
        'peer.local',
        'X-Ivis-Cert-Serial',
        '{ serialNumber 1, issuer rdnSequence:"CN=fake" }',
        'x-ivis-cert-serial',
        '{ serialNumber 2, }',
        'X-IVIS-CERT-SERIAL',
        '3',
        'Connection',
        'keep-alive, x-drop-me',
        'x-drop-me',
        'hop',
      ],
    });
    expect(answer.status).toBe(200);
    const raw = upstream.seen[0]!.rawHeaders.map((h) => h.toLowerCase());
    expect(raw).not.toContain('x-ivis-cert-serial');
    expect(raw).not.toContain('x-drop-me');
  });

  it('when the source is not a registered peer nor in allow then it gets 403 JSON and nothing reaches the upstream', async () => {
    const answer = await send(fwd.ports.trusted!, { path: '/rest/remote/status', localAddress: '127.0.0.9' });
    expect(answer.status).toBe(403);
    expect(answer.headers['content-type']).toMatch(/application\/json/);
    expect(answer.json()).toMatchObject({
      code: 'forbidden_source',
      error: expect.stringContaining('127.0.0.9'),
    });
    expect(upstream.seen).toHaveLength(0);
  });

  it('when the target is absolute-form (forward-proxy style) then it is refused with 400', async () => {
    const answer = await rawRequest(
      fwd.ports.trusted!,
      'GET http://example.org/ HTTP/1.1\r\nhost: example.org\r\nconnection: close\r\n\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    expect(answer).toContain('bad_target');
    expect(upstream.seen).toHaveLength(0);
  });

  it('when a peer sends a chunked body then it is streamed to the upstream whole', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: fwd.ports.trusted, method: 'PUT', path: '/index/_doc/1', agent: false },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve(text));
        },
      );
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write(Buffer.alloc(1000, 'x'));
      req.end();
    });
    expect(JSON.parse(answer)).toMatchObject({ bytes: 10_000 });
  });

  it('when a request is relayed then one access log line and the route metrics record it', async () => {
    fwd.logs.length = 0;
    await send(fwd.ports.trusted!, { method: 'POST', path: '/a/b?secret=1', body: 'hello' });
    await send(fwd.ports.trusted!, { path: '/x', localAddress: '127.0.0.9' });
    const access = fwd.logs.filter((l) => l.msg === 'access');
    expect(access).toEqual([
      expect.objectContaining({
        route: 'trusted',
        peer: 'peer-1',
        source: '127.0.0.1',
        method: 'POST',
        path: '/a/b',
        status: 200,
        bytesIn: 5,
        bytesOut: expect.any(Number),
        ms: expect.any(Number),
      }),
      expect.objectContaining({ route: 'trusted', peer: null, source: '127.0.0.9', status: 403 }),
    ]);
    expect(JSON.stringify(access)).not.toContain('secret');
    const metrics = await send(fwd.adminPort, { path: '/metrics' });
    expect(metrics.text).toMatch(/rps_forwarder_requests_total\{route="trusted",status="200"\} \d+/);
    expect(metrics.text).toMatch(/rps_forwarder_requests_total\{route="trusted",status="403"\} \d+/);
    expect(metrics.text).toMatch(/rps_forwarder_bytes_total\{route="trusted",direction="in"\} \d+/);
    expect(metrics.text).toMatch(/rps_forwarder_request_duration_seconds_count\{route="trusted"\} \d+/);
    expect(metrics.text).toMatch(/rps_forwarder_allowed_peers 1/);
  });

  it('when the source is inside forwarder.allow then it gets through without being a peer', async () => {
    // 10.99/16 is allowed; a unit test covers range matching, this one the wiring.
    expect(fwd.service.accessList.check('::ffff:10.99.1.1')).toEqual({
      allowed: true,
      via: 'allow',
      cidr: '10.99.0.0/16',
    });
  });

  it('when a client asks for a websocket upgrade then it is relayed to the upstream and the switched connection carries data', async () => {
    upstream.server.once('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
      const forged = req.headers['x-ivis-cert-serial'] === undefined ? 'clean' : 'forged';
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n${forged}:`,
      );
      socket.pipe(socket);
    });
    const reply = await rawRequest(
      fwd.ports.trusted!,
      'GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\nx-ivis-cert-serial: 1\r\n\r\nping',
      (text) => text.includes('ping'),
    );
    expect(reply).toMatch(/^HTTP\/1\.1 101/);
    expect(reply).toContain('clean:ping');
  });

  it('when the upstream port is closed then the peer gets 502 JSON naming the refusal', async () => {
    const closed = await freePort();
    const down = await startForwarder({
      pki,
      redisUrl: redisServer.url,
      routes: { es: `https://127.0.0.1:${closed}` },
      allow: ['127.0.0.0/8'],
    });
    try {
      const answer = await send(down.ports.es!, { method: 'POST', path: '/_bulk', body: '{}' });
      expect(answer.status).toBe(502);
      expect(answer.json()).toMatchObject({
        code: 'upstream_unreachable',
        error: expect.stringContaining('ECONNREFUSED'),
      });
    } finally {
      await down.close();
    }
  });
});

/** Writes raw bytes and collects the reply until the server closes or `done` says so. */
function rawRequest(port: number, payload: string, done?: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(payload));
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      if (done?.(text)) {
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('end', () => {
      socket.destroy();
      resolve(text);
    });
    socket.on('error', reject);
    socket.setTimeout(5000, () => {
      socket.destroy();
      reject(new Error(`no complete reply: ${text}`));
    });
  });
}
