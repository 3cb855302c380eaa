import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { RequestType, createCa, issueCertificate, type StatusPush } from '@rps/common';
import { testLogger } from '@rps/common/testing';
import { IvisPushClient, PushError } from '../src/services/ivis-push.client';

const running = (runId: number): StatusPush => ({ runId, status: { status: 2 } });

/*
 * The push client over real sockets: keep-alive to the forwarder's trusted
 * route, a reused connection the server dropped, timeouts, final 4xx, TLS.
 */

function client(base: string, overrides: Partial<ConstructorParameters<typeof IvisPushClient>[0]> = {}) {
  return new IvisPushClient({
    trustedUrlBase: base,
    attempts: 3,
    backoffMs: 1,
    maxBackoffMs: 1,
    timeoutMs: 10_000,
    logger: testLogger(),
    ...overrides,
  });
}

async function listen(server: net.Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('IvisPushClient over real sockets', () => {
  const servers: net.Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      (server as http.Server).closeAllConnections?.();
      server.close();
    }
  });

  it('when several pushes go out then they share one keep-alive connection and each gets its answer', async () => {
    const received: Array<{ url: string; type: string; body: string }> = [];
    let connections = 0;
    const server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (part: string) => (body += part));
      req.on('end', () => {
        received.push({ url: req.url ?? '', type: req.headers['content-type'] ?? '', body });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ n: received.length }));
      });
    });
    server.on('connection', () => connections++);
    servers.push(server);
    const push = client(`${await listen(server)}/prefix/`);
    expect(await push.status({ runId: 1, status: { status: 2 }, output: 'é' })).toEqual({ n: 1 });
    expect(await push.emit({ type: 'run/1/output', data: 'x' })).toEqual({ n: 2 });
    expect(await push.runRequest({ type: RequestType.CREATE_SIG, payload: { jobId: 1 } })).toEqual({
      n: 3,
    });
    expect(received.map((r) => r.url)).toEqual([
      '/prefix/rest/remote/status',
      '/prefix/rest/remote/emit',
      '/prefix/rest/remote/runRequest',
    ]);
    expect(received[0]).toEqual({
      url: '/prefix/rest/remote/status',
      type: 'application/json',
      body: JSON.stringify({ runId: 1, status: { status: 2 }, output: 'é' }),
    });
    expect(connections).toBe(1);
    push.close();
  });

  it('when the server drops a kept connection as the next push arrives then the push is sent again on a new one', async () => {
    // A raw server: answers the first request of each connection, kept alive,
    // and resets the connection when a second request comes on it.
    let requests = 0;
    const server = net.createServer((socket) => {
      let seen = 0;
      socket.on('data', (data) => {
        if (!data.toString('latin1').startsWith('POST ')) return; // the rest of a request
        seen++;
        requests++;
        if (seen > 1) {
          socket.resetAndDestroy();
          return;
        }
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}');
      });
    });
    servers.push(server);
    const push = client(await listen(server));
    await push.status(running(1));
    await push.status(running(2));
    expect(requests).toBe(3); // the second push twice: reset, then on a new connection
    push.close();
  });

  it('when IVIS-core answers 400 then the push fails at once, not retried', async () => {
    let requests = 0;
    const server = http.createServer((req, res) => {
      requests++;
      req.resume();
      res.statusCode = 400;
      res.end('{"error":"bad"}');
    });
    servers.push(server);
    const push = client(await listen(server));
    const failed = await push.status(running(1)).catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(PushError);
    expect(failed).toMatchObject({
      status: 400,
      retryable: false,
      message: 'IVIS-core answered 400 to status',
    });
    expect(requests).toBe(1);
    push.close();
  });

  it('when a push is given no attempt then it fails as retryable without sending, and counts as a failure', async () => {
    let requests = 0;
    const server = http.createServer((req, res) => {
      requests++;
      req.resume();
      res.end('{}');
    });
    servers.push(server);
    const failures: string[] = [];
    const push = client(await listen(server), { onFailure: (kind) => failures.push(kind) });
    const failed = await push.status(running(1), 0).catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(PushError);
    expect(failed).toMatchObject({ status: null, retryable: true, message: 'no attempt made' });
    expect(requests).toBe(0);
    expect(failures).toEqual(['status']);
    expect(await push.status(running(1))).toEqual({});
    push.close();
  });

  it('when nothing answers within timeoutMs then every attempt fails as retryable, without a status', async () => {
    let requests = 0;
    const server = http.createServer(() => {
      requests++; // never answers
    });
    servers.push(server);
    const push = client(await listen(server), { attempts: 2, timeoutMs: 200 });
    const failed = await push.status(running(1)).catch((err: unknown) => err);
    expect(failed).toMatchObject({ status: null, retryable: true });
    expect(requests).toBe(2);
    push.close();
  });

  it('when the push is abandoned by its signal then no further attempt is made', async () => {
    let requests = 0;
    const abandon = new AbortController();
    const server = http.createServer(() => {
      requests++;
      abandon.abort();
    });
    servers.push(server);
    const push = client(await listen(server), { attempts: 5 });
    const failed = await push.status(running(1), undefined, abandon.signal).catch((err: unknown) => err);
    expect(failed).toMatchObject({ status: null });
    expect(requests).toBe(1);
    push.close();
  });

  it('when the client is closed then its idle connections close', async () => {
    const server = http.createServer((req, res) => {
      req.resume();
      res.end('{}');
    });
    const closed = new Promise<void>((resolve) =>
      server.on('connection', (s) => s.on('close', () => resolve())),
    );
    servers.push(server);
    const push = client(await listen(server));
    await push.status(running(1));
    push.close();
    await closed;
  });

  it('when the base is https and the server certificate is not trusted then the push fails naming the certificate', async () => {
    const ca = createCa({ commonName: 'Not trusted CA' });
    const leaf = issueCertificate(ca, { commonName: '127.0.0.1', ips: ['127.0.0.1'] });
    let requests = 0;
    const server = https.createServer({ key: leaf.key, cert: leaf.cert }, (req, res) => {
      requests++;
      res.end('{}');
    });
    servers.push(server);
    const base = (await listen(server)).replace('http:', 'https:');
    const push = client(base, { attempts: 1 });
    const failed = await push.status(running(1)).catch((err: unknown) => err);
    expect(failed).toMatchObject({ status: null, retryable: true });
    expect((failed as Error).message).toMatch(/certificate/);
    expect(requests).toBe(0);
    push.close();
  });
});
