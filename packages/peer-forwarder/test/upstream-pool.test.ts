import { randomBytes, X509Certificate } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import tls, { type TLSSocket, type TlsOptions } from 'node:tls';
import { closeServer, listen } from '@rps/common';
import { createTestPki, freePort, testLogger, waitFor } from '@rps/common/testing';
import {
  UpstreamPool,
  type PoolExchange,
  type PoolLimits,
  type PoolRequest,
  type PoolResponseHandler,
} from '../src/services/upstream-pool.service';

type CodedError = Error & { code?: unknown };

interface Hooks {
  onHead?: () => void;
  /** Its result (when boolean) is what the handler answers the pool. */
  onData?: (chunk: Buffer) => boolean | void;
  onEnd?: () => void;
  onError?: (err: Error) => void;
}

/** A response handler that records everything the pool delivers to it. */
class Recorder implements PoolResponseHandler {
  readonly calls: Array<'head' | 'data' | 'end' | 'error'> = [];
  status = 0;
  statusMessage = '';
  rawHeaders: string[] = [];
  readonly chunks: Buffer[] = [];
  error: CodedError | undefined;
  /** Resolves on onEnd or onError (never rejects). */
  readonly settled: Promise<void>;
  private settle: () => void = () => undefined;

  constructor(private readonly hooks: Hooks = {}) {
    this.settled = new Promise<void>((resolve) => {
      this.settle = resolve;
    });
  }

  get body(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get text(): string {
    return this.body.toString('latin1');
  }

  header(name: string): string | undefined {
    for (let i = 0; i < this.rawHeaders.length; i += 2) {
      if (this.rawHeaders[i]!.toLowerCase() === name) return this.rawHeaders[i + 1];
    }
    return undefined;
  }

  onHead(statusCode: number, statusMessage: string, rawHeaders: string[]): void {
    this.calls.push('head');
    this.status = statusCode;
    this.statusMessage = statusMessage;
    this.rawHeaders = rawHeaders;
    this.hooks.onHead?.();
  }

  onData(chunk: Buffer): boolean {
    this.calls.push('data');
    this.chunks.push(Buffer.from(chunk));
    const answer = this.hooks.onData?.(chunk);
    return typeof answer === 'boolean' ? answer : true;
  }

  onEnd(): void {
    this.calls.push('end');
    this.settle();
    this.hooks.onEnd?.();
  }

  onError(err: Error): void {
    this.calls.push('error');
    this.error = err;
    this.settle();
    this.hooks.onError?.(err);
  }
}

/** Rejects when `promise` takes longer than `ms` (a hung exchange fails its test fast). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const noop = () => undefined;

function send(
  pool: UpstreamPool,
  req: Partial<PoolRequest> = {},
  hooks: Hooks = {},
): { recorder: Recorder; exchange: PoolExchange } {
  const recorder = new Recorder(hooks);
  const exchange = pool.request({ method: 'GET', path: '/', headers: [], body: null, ...req }, recorder);
  return { recorder, exchange };
}

/** One exchange that must end with onEnd. */
async function fetchOk(pool: UpstreamPool, req: Partial<PoolRequest> = {}, hooks: Hooks = {}) {
  const { recorder } = send(pool, req, hooks);
  await within(recorder.settled, 3000, `${req.method ?? 'GET'} ${req.path ?? '/'}`);
  if (recorder.error) throw recorder.error;
  return recorder;
}

/** One exchange that must end with onError; returns the error. */
async function fetchError(pool: UpstreamPool, req: Partial<PoolRequest> = {}): Promise<CodedError> {
  const { recorder } = send(pool, req);
  await within(recorder.settled, 3000, `${req.method ?? 'GET'} ${req.path ?? '/'}`);
  if (!recorder.error) throw new Error(`expected an error, got ${recorder.status} ${recorder.text}`);
  return recorder.error;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** What a test upstream saw of one request. */
interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Index (from 0) of the connection it came on. */
  conn: number;
  /** Serial (hex) of the client certificate. */
  serial: string | undefined;
  body: Buffer;
}

/** Connection bookkeeping of a test upstream. */
interface ConnectionStats {
  port: number;
  /** Server side of each TLS connection, in order of handshake. */
  sockets: TLSSocket[];
  /** Protocol and session resumption of each, read at the handshake. */
  handshakes: Array<{ protocol: string | null; resumed: boolean }>;
  /** Connections open now and the most open at once. */
  open: number;
  maxOpen: number;
  /** Connections closed so far. */
  closed: number;
}

interface HttpsUpstream extends ConnectionStats {
  server: https.Server;
  seen: SeenRequest[];
}

interface RawRequest {
  head: string;
  method: string;
  path: string;
  body: Buffer;
  socket: TLSSocket;
  conn: number;
}

interface RawUpstream extends ConnectionStats {
  requests: RawRequest[];
}

describe('UpstreamPool against TLS upstreams that require a client certificate', () => {
  const pki = createTestPki();
  const cleanups: Array<() => Promise<void>> = [];
  const TLS_SERVER: TlsOptions = {
    cert: pki.server.cert,
    key: pki.server.key,
    ca: pki.ca.cert,
    requestCert: true,
    rejectUnauthorized: true,
  };
  const LIMITS: PoolLimits = {
    connections: 4,
    keepAliveTimeoutMs: 5000,
    connectTimeoutMs: 2000,
    headersTimeoutMs: 2000,
    bodyTimeoutMs: 2000,
    queueTimeoutMs: 5000,
    uploadIdleMs: 2000,
  };

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  afterAll(() => pki.cleanup());

  /** The pool as the forwarder builds it: the service certificate (svr.pem) as client certificate, the test CA. */
  function poolTo(
    port: number,
    limits: Partial<PoolLimits> = {},
    onConnectionError?: (err: Error) => void,
  ): UpstreamPool {
    const pool = new UpstreamPool(
      new URL(`https://127.0.0.1:${port}`),
      { cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert },
      { ...LIMITS, ...limits },
      onConnectionError,
    );
    cleanups.push(() => pool.close(0));
    return pool;
  }

  function track(stats: ConnectionStats, socket: TLSSocket): number {
    const index = stats.sockets.push(socket) - 1;
    stats.handshakes.push({ protocol: socket.getProtocol(), resumed: socket.isSessionReused() });
    stats.open++;
    stats.maxOpen = Math.max(stats.maxOpen, stats.open);
    socket.on('error', noop);
    socket.on('close', () => {
      stats.open--;
      stats.closed++;
    });
    return index;
  }

  async function startHttps(
    handler: (req: IncomingMessage, res: ServerResponse, seen: SeenRequest) => void,
    options: TlsOptions & { keepAliveTimeout?: number } = {},
  ): Promise<HttpsUpstream> {
    const { keepAliveTimeout, ...tlsOptions } = options;
    const connOf = new WeakMap<object, number>();
    const server = https.createServer({ ...TLS_SERVER, ...tlsOptions }, (req, res) => {
      const socket = req.socket as TLSSocket;
      const seen: SeenRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        conn: connOf.get(socket) ?? -1,
        serial: socket.getPeerCertificate().serialNumber,
        body: Buffer.alloc(0),
      };
      upstream.seen.push(seen);
      handler(req, res, seen);
    });
    if (keepAliveTimeout !== undefined) server.keepAliveTimeout = keepAliveTimeout;
    const upstream: HttpsUpstream = {
      port: 0,
      server,
      seen: [],
      sockets: [],
      handshakes: [],
      open: 0,
      maxOpen: 0,
      closed: 0,
    };
    server.on('secureConnection', (socket: TLSSocket) => connOf.set(socket, track(upstream, socket)));
    server.on('tlsClientError', noop);
    upstream.port = (await listen(server, { host: '127.0.0.1', port: 0 }, testLogger())).port;
    cleanups.push(async () => {
      server.closeAllConnections();
      await closeServer(server);
    });
    return upstream;
  }

  /** Reads the body and answers JSON naming the request and its connection. */
  const echo = (req: IncomingMessage, res: ServerResponse, seen: SeenRequest) => {
    void readBody(req).then((body) => {
      seen.body = body;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: seen.method, path: seen.path, bytes: body.length, conn: seen.conn }));
    });
  };

  /**
   * A TLS server writing raw HTTP bytes. Requests are split off by their head
   * (and content-length body) one after another per connection; `onRequest`
   * writes whatever answer the test needs.
   */
  async function startRaw(onRequest: (req: RawRequest) => void): Promise<RawUpstream> {
    const upstream: RawUpstream = {
      port: 0,
      requests: [],
      sockets: [],
      handshakes: [],
      open: 0,
      maxOpen: 0,
      closed: 0,
    };
    const server = tls.createServer(TLS_SERVER, (socket) => {
      const conn = track(upstream, socket);
      let buffered = Buffer.alloc(0);
      socket.on('data', (data: Buffer) => {
        buffered = Buffer.concat([buffered, data]);
        for (;;) {
          const end = buffered.indexOf('\r\n\r\n');
          if (end === -1) return;
          const head = buffered.toString('latin1', 0, end);
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          if (buffered.length < end + 4 + length) return;
          const body = buffered.subarray(end + 4, end + 4 + length);
          buffered = buffered.subarray(end + 4 + length);
          const [method = '', path = ''] = head.split(' ');
          const req: RawRequest = { head, method, path, body, socket, conn };
          upstream.requests.push(req);
          onRequest(req);
        }
      });
    });
    server.on('tlsClientError', noop);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    upstream.port = (server.address() as net.AddressInfo).port;
    cleanups.push(async () => {
      for (const socket of upstream.sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    return upstream;
  }

  const ok = (body: string, extra = '') =>
    `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

  describe('keep-alive', () => {
    it('when a GET, a POST with a body, an empty POST and a HEAD follow each other then they share one connection and each gets its own answer', async () => {
      const upstream = await startHttps((req, res, seen) => {
        if (req.method === 'HEAD') {
          res.setHeader('content-length', '11');
          res.end();
          return;
        }
        echo(req, res, seen);
      });
      const pool = poolTo(upstream.port);

      const get = await fetchOk(pool, { path: '/a?x=1', headers: ['x-test', 'yes'] });
      expect(get.status).toBe(200);
      expect(JSON.parse(get.text)).toEqual({ method: 'GET', path: '/a?x=1', bytes: 0, conn: 0 });

      const payload = randomBytes(10_000);
      const post = await fetchOk(pool, { method: 'POST', path: '/b', body: payload });
      expect(JSON.parse(post.text)).toMatchObject({ method: 'POST', bytes: 10_000, conn: 0 });

      const empty = await fetchOk(pool, { method: 'POST', path: '/c', body: null });
      expect(JSON.parse(empty.text)).toMatchObject({ method: 'POST', bytes: 0, conn: 0 });

      const head = await fetchOk(pool, { method: 'HEAD', path: '/d' });
      expect(head.calls).toEqual(['head', 'end']);
      expect(head.header('content-length')).toBe('11');

      const after = await fetchOk(pool, { path: '/e' });
      expect(JSON.parse(after.text)).toMatchObject({ path: '/e', conn: 0 });

      expect(upstream.sockets).toHaveLength(1);
      expect(pool.size).toBe(1);
      const [first, second, third] = upstream.seen;
      expect(first!.headers).toMatchObject({ host: `127.0.0.1:${upstream.port}`, 'x-test': 'yes' });
      expect(first!.headers['content-length']).toBeUndefined();
      expect(second!.body.equals(payload)).toBe(true);
      expect(second!.headers['content-length']).toBe('10000');
      expect(second!.headers['transfer-encoding']).toBeUndefined();
      expect(third!.headers['content-length']).toBe('0');
    });

    it('when a handler holds the response back (onData false) and resumes only after it completed then the connection still carries the next requests', async () => {
      const upstream = await startHttps((req, res, seen) => {
        if (req.url === '/held') {
          res.setHeader('content-length', '1000');
          res.end(Buffer.alloc(1000, 'h'));
          return;
        }
        echo(req, res, seen);
      });
      // One connection: the queued request is handed the connection while the first answer is held back.
      const pool = poolTo(upstream.port, { connections: 1, bodyTimeoutMs: 150 });
      const first = send(
        pool,
        { path: '/held' },
        {
          onData: () => false,
          onEnd: () => setTimeout(() => first.exchange.resume(), 300),
        },
      );
      const queued = send(pool, { path: '/queued' });
      await within(first.recorder.settled, 2000, 'held answer');
      expect(first.recorder.body.length).toBe(1000);
      expect(first.recorder.calls.at(-1)).toBe('end');
      // Before the late resume() call: the next answer must not wait for it.
      await within(queued.recorder.settled, 250, 'queued request behind a held answer');
      expect(JSON.parse(queued.recorder.text)).toMatchObject({ path: '/queued', conn: 0 });

      await sleep(350);
      const later = await fetchOk(pool, { path: '/later' });
      expect(JSON.parse(later.text)).toMatchObject({ path: '/later', conn: 0 });
      expect(first.recorder.calls.filter((c) => c === 'error')).toHaveLength(0);
      expect(upstream.sockets).toHaveLength(1);
    });

    it('when a handler holds a response back longer than bodyTimeoutMs and resumes it then the rest arrives and no body timeout fires', async () => {
      const upstream = await startRaw((req) => {
        req.socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 2000\r\n\r\n${'a'.repeat(1000)}`);
        setTimeout(() => req.socket.write('b'.repeat(1000)), 30);
      });
      const pool = poolTo(upstream.port, { bodyTimeoutMs: 150 });
      let holds = 0;
      const sent = send(
        pool,
        { path: '/slow-peer' },
        {
          onData: () => {
            if (holds++ > 0) return true;
            setTimeout(() => sent.exchange.resume(), 400);
            return false;
          },
        },
      );
      await within(sent.recorder.settled, 2000, 'held answer');
      expect(sent.recorder.error).toBeUndefined();
      expect(sent.recorder.text).toBe('a'.repeat(1000) + 'b'.repeat(1000));
      expect((await fetchOk(pool, { path: '/next' })).status).toBe(200);
      expect(upstream.requests.map((r) => r.conn)).toEqual([0, 0]);
    });

    it('when five requests arrive for two connections then at most two are open and the requests are served in order of arrival', async () => {
      const upstream = await startHttps((req, res, seen) => {
        setTimeout(() => echo(req, res, seen), 60);
      });
      const pool = poolTo(upstream.port, { connections: 2 });
      const completed: number[] = [];
      const exchanges = [0, 1, 2, 3, 4].map((i) =>
        send(pool, { path: `/r/${i}` }, { onEnd: () => completed.push(i) }),
      );
      // All five wait; two connections are being opened for them.
      expect(pool.size).toBe(2);
      expect(pool.queued).toBe(5);
      await within(Promise.all(exchanges.map((e) => e.recorder.settled)), 3000, 'five requests');
      for (const { recorder } of exchanges) expect(recorder.status).toBe(200);
      expect(completed).toEqual([0, 1, 2, 3, 4]);
      expect(upstream.seen.map((s) => s.path)).toEqual(['/r/0', '/r/1', '/r/2', '/r/3', '/r/4']);
      expect(upstream.sockets).toHaveLength(2);
      expect(upstream.maxOpen).toBe(2);
      expect(pool.queued).toBe(0);
    });

    it('when the upstream answers Connection: close then the next request opens a new connection', async () => {
      const upstream = await startHttps((req, res, seen) => {
        if (req.url === '/close') res.setHeader('connection', 'close');
        echo(req, res, seen);
      });
      const pool = poolTo(upstream.port);
      await fetchOk(pool, { path: '/close' });
      const next = await fetchOk(pool, { path: '/next' });
      expect(JSON.parse(next.text)).toMatchObject({ path: '/next', conn: 1 });
      expect(upstream.sockets).toHaveLength(2);
      await waitFor('first connection closed', () => upstream.closed === 1, { timeoutMs: 2000 });
    });

    it('when the upstream announces Keep-Alive: timeout=1 then the connection is not kept, and with timeout=2 it is', async () => {
      // timeout=1 leaves 0 ms after the pool's 1 s margin: below the 100 ms worth keeping.
      const upstream = await startRaw((req) => {
        const timeout = req.path === '/short' ? 1 : 2;
        req.socket.write(ok(req.path, `keep-alive: timeout=${timeout}\r\n`));
      });
      const pool = poolTo(upstream.port);
      expect((await fetchOk(pool, { path: '/short' })).text).toBe('/short');
      await waitFor('short keep-alive connection closed by the pool', () => upstream.closed === 1, {
        timeoutMs: 2000,
      });
      expect((await fetchOk(pool, { path: '/long' })).text).toBe('/long');
      expect((await fetchOk(pool, { path: '/long' })).text).toBe('/long');
      expect(upstream.requests.map((r) => r.conn)).toEqual([0, 1, 1]);
      expect(upstream.closed).toBe(1);
    });

    it('when a connection stays idle for keepAliveTimeoutMs then the pool closes it and the next request opens another', async () => {
      const upstream = await startHttps(echo);
      const pool = poolTo(upstream.port, { keepAliveTimeoutMs: 200 });
      await fetchOk(pool);
      const started = Date.now();
      await waitFor('idle connection closed', () => upstream.closed === 1 && pool.size === 0, {
        timeoutMs: 2000,
        intervalMs: 10,
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
      const next = await fetchOk(pool, { path: '/again' });
      expect(JSON.parse(next.text)).toMatchObject({ conn: 1 });
    });

    it('when the upstream closes an idle connection (its keep-alive timeout) then the next request succeeds on a new connection', async () => {
      const upstream = await startHttps(echo, { keepAliveTimeout: 100 });
      const pool = poolTo(upstream.port);
      await fetchOk(pool, { path: '/one' });
      await waitFor('upstream closed the idle connection', () => upstream.closed === 1 && pool.size === 0, {
        timeoutMs: 2000,
        intervalMs: 10,
      });
      const next = await fetchOk(pool, { path: '/two' });
      expect(JSON.parse(next.text)).toMatchObject({ path: '/two', conn: 1 });
    });

    it('when a raw upstream ends the socket right after a keep-alive answer then the next request succeeds on a new connection', async () => {
      const upstream = await startRaw((req) => {
        req.socket.end(ok(`answer ${req.conn}`));
      });
      const pool = poolTo(upstream.port);
      expect((await fetchOk(pool, { path: '/one' })).text).toBe('answer 0');
      await waitFor('pool dropped the ended connection', () => pool.size === 0, {
        timeoutMs: 2000,
        intervalMs: 5,
      });
      expect((await fetchOk(pool, { path: '/two' })).text).toBe('answer 1');
    });
    it('when a request arrives in the loop turn in which the pool closed an idle connection then it is not handed that dead connection', async () => {
      // Regression: destroy() used to leave the connection in the idle list until
      // its 'close' event (a later loop phase); a request in between got it.
      const KEEP_ALIVE_MS = 150;
      const upstream = await startHttps(echo);
      const pool = poolTo(upstream.port, { keepAliveTimeoutMs: KEEP_ALIVE_MS });
      await fetchOk(pool, { path: '/warm' });
      let late: Recorder | undefined;
      await fetchOk(
        pool,
        { path: '/first' },
        {
          // Runs after the pool has parked the connection and armed its idle timer. A timer of
          // the same length armed now fires right after it, in the same timers phase (the busy
          // wait makes sure both are due at once): the pool has just destroyed the idle
          // connection, whose 'close' event has not come yet. A peer request arriving in that
          // loop turn (any I/O callback before the close phase) is in the same position.
          onEnd: () =>
            queueMicrotask(() => {
              setTimeout(() => {
                late = send(pool, { path: '/late' }).recorder;
              }, KEEP_ALIVE_MS);
              const until = Date.now() + KEEP_ALIVE_MS + 50;
              while (Date.now() < until);
            }),
        },
      );
      const recorder = await waitFor('late request sent', () => late, { timeoutMs: 2000, intervalMs: 5 });
      await within(recorder.settled, 2000, 'late request');
      expect(recorder.error).toBeUndefined();
      expect(JSON.parse(recorder.text)).toMatchObject({ path: '/late', conn: 1 });
    });
  });

  describe('response framing', () => {
    it('when the answer is chunked with extensions and trailers, in pieces, then it is delivered whole and the connection is reused', async () => {
      const upstream = await startRaw((req) => {
        if (req.path !== '/chunked') {
          req.socket.write(ok('plain'));
          return;
        }
        const bytes =
          'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n' +
          '5;name=value\r\nhello\r\n6 ; ext\r\n world\r\n1a\r\n' +
          'abcdefghijklmnopqrstuvwxyz\r\n0\r\nx-checksum: abc\r\nx-other: 1\r\n\r\n';
        // Cut inside the head, a size line, chunk data and the trailers.
        const cuts = [20, 52, 60, 75, 110, bytes.length];
        let from = 0;
        cuts.forEach((to, i) => {
          const piece = bytes.slice(from, to);
          from = to;
          setTimeout(() => req.socket.write(piece, 'latin1'), i * 15);
        });
      });
      const pool = poolTo(upstream.port);
      const answer = await fetchOk(pool, { path: '/chunked' });
      expect(answer.text).toBe('hello worldabcdefghijklmnopqrstuvwxyz');
      expect(answer.calls.at(-1)).toBe('end');
      expect((await fetchOk(pool, { path: '/after' })).text).toBe('plain');
      expect(upstream.sockets).toHaveLength(1);
    });

    it('when informational answers precede the final one then only the final one reaches the handler', async () => {
      const upstream = await startRaw((req) => {
        req.socket.write(
          'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n' +
            ok('final'),
        );
      });
      const pool = poolTo(upstream.port);
      const answer = await fetchOk(pool, { method: 'POST', path: '/x', body: Buffer.from('1') });
      expect(answer.status).toBe(200);
      expect(answer.calls).toEqual(['head', 'data', 'end']);
      expect(answer.text).toBe('final');
      expect((await fetchOk(pool, { path: '/y' })).text).toBe('final');
      expect(upstream.requests.map((r) => r.conn)).toEqual([0, 0]);
    });

    it('when the answer has no length and the upstream ends the connection then the body up to the close is delivered whole', async () => {
      const upstream = await startRaw((req) => {
        if (req.path !== '/until-close') {
          req.socket.write(ok('plain'));
          return;
        }
        req.socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nfirst part, ');
        setTimeout(() => req.socket.end('second part'), 30);
      });
      const pool = poolTo(upstream.port);
      const answer = await fetchOk(pool, { path: '/until-close' });
      expect(answer.text).toBe('first part, second part');
      expect(answer.error).toBeUndefined();
      expect((await fetchOk(pool, { path: '/after' })).text).toBe('plain');
      expect(upstream.requests.map((r) => r.conn)).toEqual([0, 1]);
    });

    it('when the answer carries both Transfer-Encoding and Content-Length then it is read as chunked and the connection is not reused', async () => {
      const upstream = await startRaw((req) => {
        if (req.path === '/both') {
          req.socket.write(
            'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 100\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
          );
        } else req.socket.write(ok('plain'));
      });
      const pool = poolTo(upstream.port);
      const answer = await fetchOk(pool, { path: '/both' });
      expect(answer.text).toBe('abc');
      await waitFor('the pool closed the connection', () => upstream.closed === 1, { timeoutMs: 2000 });
      expect((await fetchOk(pool, { path: '/after' })).text).toBe('plain');
      expect(upstream.requests.map((r) => r.conn)).toEqual([0, 1]);
    });
  });

  describe('streamed request bodies', () => {
    it('when a body of unknown length is streamed then it arrives chunk-encoded and whole', async () => {
      const upstream = await startHttps(echo);
      const pool = poolTo(upstream.port);
      const source = new PassThrough();
      const parts = [randomBytes(1000), Buffer.alloc(0), randomBytes(70_000), Buffer.from('tail')];
      const { recorder, exchange } = send(pool, {
        method: 'POST',
        path: '/chunked-upload',
        stream: { source, length: null },
      });
      for (const part of parts) {
        source.write(part);
        await sleep(10);
      }
      source.end();
      await within(recorder.settled, 3000, 'chunked upload');
      expect(recorder.error).toBeUndefined();
      const total = Buffer.concat(parts);
      expect(JSON.parse(recorder.text)).toMatchObject({ bytes: total.length });
      const seen = upstream.seen[0]!;
      expect(seen.headers['transfer-encoding']).toBe('chunked');
      expect(seen.headers['content-length']).toBeUndefined();
      expect(seen.body.equals(total)).toBe(true);
      expect(exchange.bodyBytesSent).toBe(total.length);
      // The chunked body ended cleanly: the connection carries the next request.
      expect(JSON.parse((await fetchOk(pool, { path: '/next' })).text)).toMatchObject({ conn: 0 });
    });

    it('when a body of known length is streamed then it arrives with that content-length and whole', async () => {
      const upstream = await startHttps(echo);
      const pool = poolTo(upstream.port);
      const parts = [randomBytes(5000), randomBytes(100_000), randomBytes(3)];
      const total = Buffer.concat(parts);
      const answer = await fetchOk(pool, {
        method: 'PUT',
        path: '/known',
        stream: { source: Readable.from(parts), length: total.length },
      });
      expect(JSON.parse(answer.text)).toMatchObject({ method: 'PUT', bytes: total.length });
      const seen = upstream.seen[0]!;
      expect(seen.headers['content-length']).toBe(String(total.length));
      expect(seen.headers['transfer-encoding']).toBeUndefined();
      expect(seen.body.equals(total)).toBe(true);
      expect(JSON.parse((await fetchOk(pool, { path: '/next' })).text)).toMatchObject({ conn: 0 });
    });

    it('when the upstream answers 413 after the first chunk of an upload and reads no more then the handler gets the 413 and the connection is not reused', async () => {
      const upstream = await startHttps((req, res, seen) => {
        if (req.url !== '/upload') {
          echo(req, res, seen);
          return;
        }
        req.once('data', () => {
          // Reads nothing more: the rest of the upload stays unread on this connection.
          req.pause();
          res.writeHead(413, { 'content-type': 'text/plain', 'content-length': '9' });
          res.end('too large');
        });
      });
      const pool = poolTo(upstream.port, { connections: 1 });
      const source = new PassThrough();
      const { recorder } = send(pool, {
        method: 'POST',
        path: '/upload',
        stream: { source, length: 10 * 1024 * 1024 },
      });
      source.write(Buffer.alloc(64 * 1024, 'a'));
      await within(recorder.settled, 2000, 'early answer');
      expect(recorder.status).toBe(413);
      expect(recorder.text).toBe('too large');
      expect(recorder.calls).toEqual(['head', 'data', 'end']);
      // The peer keeps uploading; none of it may reach a connection that carries another request.
      for (let i = 0; i < 20; i++) source.write(Buffer.alloc(64 * 1024, 'b'));
      source.end();

      const next = await fetchOk(pool, { method: 'POST', path: '/next', body: Buffer.from('{"n":1}') });
      expect(JSON.parse(next.text)).toEqual({ method: 'POST', path: '/next', bytes: 7, conn: 1 });
      // (The upstream, which stopped reading, does not notice the close: the pool's own count tells.)
      expect(pool.size).toBe(1);
      expect(upstream.sockets).toHaveLength(2);
      expect(recorder.calls).toEqual(['head', 'data', 'end']);
    });
  });

  describe('large uploads over TLS 1.2 (the renegotiation primer)', () => {
    const TLS12: TlsOptions = { maxVersion: 'TLSv1.2' };

    it('when the first large upload goes on a TLS 1.2 connection then one bodiless HEAD of its path precedes it, and only once', async () => {
      const upstream = await startHttps(echo, TLS12);
      const pool = poolTo(upstream.port, { connections: 1 });
      const big = randomBytes(200_000);
      for (let i = 0; i < 2; i++) {
        const answer = await fetchOk(pool, {
          method: 'POST',
          path: '/rest/remote/status',
          stream: { source: Readable.from([big]), length: big.length },
        });
        expect(JSON.parse(answer.text)).toMatchObject({ method: 'POST', bytes: big.length, conn: 0 });
      }
      await fetchOk(pool, { method: 'POST', path: '/small', body: Buffer.from('{}') });
      expect(upstream.seen.map((r) => `${r.method} ${r.path} ${r.body.length}`)).toEqual([
        'HEAD /rest/remote/status 0',
        `POST /rest/remote/status ${big.length}`,
        `POST /rest/remote/status ${big.length}`,
        'POST /small 2',
      ]);
    });

    it('when the answer to the primer closes the connection then the upload goes whole on a new one', async () => {
      const upstream = await startHttps((req, res, seen) => {
        if (req.method === 'HEAD') {
          res.setHeader('connection', 'close');
          res.end();
          return;
        }
        echo(req, res, seen);
      }, TLS12);
      const pool = poolTo(upstream.port, { connections: 2 });
      const big = randomBytes(100_000);
      const answer = await fetchOk(pool, {
        method: 'PUT',
        path: '/doc',
        stream: { source: Readable.from([big]), length: big.length },
      });
      const seen = JSON.parse(answer.text) as { bytes: number; conn: number };
      expect(seen.bytes).toBe(big.length);
      expect(seen.conn).toBeGreaterThan(0);
      expect(upstream.seen.filter((r) => r.method === 'PUT')).toHaveLength(1);
    });

    it('when the upstream speaks TLS 1.3 then no primer is sent (there is no renegotiation to prepare for)', async () => {
      const upstream = await startHttps(echo, { minVersion: 'TLSv1.3' });
      const pool = poolTo(upstream.port);
      const big = randomBytes(100_000);
      await fetchOk(pool, {
        method: 'POST',
        path: '/bulk',
        stream: { source: Readable.from([big]), length: big.length },
      });
      expect(upstream.seen.map((r) => r.method)).toEqual(['POST']);
    });
  });

  describe('errors', () => {
    it('when the upstream never answers then the exchange fails with UPSTREAM_HEADERS_TIMEOUT', async () => {
      const upstream = await startHttps(() => undefined);
      const pool = poolTo(upstream.port, { headersTimeoutMs: 200 });
      const started = Date.now();
      const err = await fetchError(pool, { path: '/never' });
      expect(err).toMatchObject({ code: 'UPSTREAM_HEADERS_TIMEOUT' });
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(180);
      expect(elapsed).toBeLessThan(1000);
      await waitFor('connection closed', () => upstream.closed === 1, { timeoutMs: 2000 });
    });

    it('when the upstream accepts TCP but never speaks TLS then the exchange fails with UPSTREAM_CONNECT_TIMEOUT', async () => {
      const held: net.Socket[] = [];
      const blackHole = net.createServer((socket) => {
        socket.on('error', noop);
        held.push(socket);
      });
      await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
      cleanups.push(async () => {
        for (const socket of held) socket.destroy();
        await new Promise<void>((resolve) => blackHole.close(() => resolve()));
      });
      const connectionErrors: Error[] = [];
      const pool = poolTo((blackHole.address() as net.AddressInfo).port, { connectTimeoutMs: 200 }, (err) =>
        connectionErrors.push(err),
      );
      const started = Date.now();
      const err = await fetchError(pool);
      expect(err).toMatchObject({ code: 'UPSTREAM_CONNECT_TIMEOUT' });
      expect(Date.now() - started).toBeLessThan(1000);
      expect(connectionErrors).toEqual([err]);
      await waitFor('pool empty', () => pool.size === 0, { timeoutMs: 1000 });
    });

    it('when the upstream port is closed then the exchange fails with ECONNREFUSED and onConnectionError hears of it', async () => {
      const connectionErrors: CodedError[] = [];
      const pool = poolTo(await freePort(), {}, (err) => connectionErrors.push(err));
      const err = await fetchError(pool);
      expect(err).toMatchObject({ code: 'ECONNREFUSED' });
      expect(connectionErrors).toHaveLength(1);
      expect(connectionErrors[0]).toMatchObject({ code: 'ECONNREFUSED' });
      expect(pool.size).toBe(0);
    });

    it('when the upstream closes the connection after reading the request without answering then the exchange fails with UPSTREAM_CLOSED', async () => {
      const upstream = await startRaw((req) => req.socket.end());
      const pool = poolTo(upstream.port);
      const err = await fetchError(pool, { path: '/hang-up' });
      expect(err).toMatchObject({ code: 'UPSTREAM_CLOSED' });
      expect(upstream.requests).toHaveLength(1);
    });

    it('when the status line is malformed then the exchange fails with UPSTREAM_PROTOCOL and the connection is closed', async () => {
      const upstream = await startRaw((req) => {
        req.socket.write('HTTP/1.1 2000 OK\r\ncontent-length: 0\r\n\r\n');
      });
      const pool = poolTo(upstream.port);
      const err = await fetchError(pool);
      expect(err).toMatchObject({ code: 'UPSTREAM_PROTOCOL' });
      await waitFor('connection closed', () => upstream.closed === 1, { timeoutMs: 2000 });
    });

    it('when the response body stalls then onError follows onHead with UPSTREAM_BODY_TIMEOUT', async () => {
      const upstream = await startRaw((req) => {
        req.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789');
      });
      const pool = poolTo(upstream.port, { bodyTimeoutMs: 200, headersTimeoutMs: 5000 });
      const { recorder } = send(pool, { path: '/stall' });
      const started = Date.now();
      await within(recorder.settled, 2000, 'stalled body');
      expect(recorder.calls).toEqual(['head', 'data', 'error']);
      expect(recorder.text).toBe('0123456789');
      expect(recorder.error).toMatchObject({ code: 'UPSTREAM_BODY_TIMEOUT' });
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(180);
      expect(elapsed).toBeLessThan(1000);
    });

    it('when bytes follow a complete response then the response is delivered and the connection is not reused', async () => {
      const upstream = await startRaw((req) => {
        req.socket.write(req.conn === 0 ? ok('first') + ok('unasked') : ok(`fresh ${req.conn}`));
      });
      const pool = poolTo(upstream.port);
      const answer = await fetchOk(pool, { path: '/one' });
      expect(answer.text).toBe('first');
      expect(answer.calls).toEqual(['head', 'data', 'end']);
      const next = await fetchOk(pool, { path: '/two' });
      expect(next.text).toBe('fresh 1');
      expect(upstream.requests.map((r) => r.conn)).toEqual([0, 1]);
      await waitFor('tainted connection closed', () => upstream.closed >= 1, { timeoutMs: 2000 });
    });
  });

  describe('abort', () => {
    it('when an exchange is aborted mid-response then the handler hears nothing more, the connection closes and a later request works', async () => {
      let serverSideClosed = false;
      const upstream = await startRaw((req) => {
        if (req.path !== '/long') {
          req.socket.write(ok('after'));
          return;
        }
        req.socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n${'x'.repeat(1000)}`);
        const more = setInterval(() => {
          if (req.socket.writable) req.socket.write('y'.repeat(1000));
        }, 10);
        req.socket.on('close', () => {
          clearInterval(more);
          serverSideClosed = true;
        });
      });
      const pool = poolTo(upstream.port);
      const { recorder, exchange } = send(pool, { path: '/long' });
      await waitFor('first body bytes', () => recorder.chunks.length > 0, { timeoutMs: 2000, intervalMs: 5 });
      exchange.abort();
      const calls = recorder.calls.length;
      const bytes = recorder.body.length;
      await waitFor('upstream saw the connection close', () => serverSideClosed, { timeoutMs: 2000 });
      await sleep(50);
      expect(recorder.calls).toHaveLength(calls);
      expect(recorder.body.length).toBe(bytes);
      expect(recorder.calls).not.toContain('end');
      expect(recorder.calls).not.toContain('error');
      expect((await fetchOk(pool, { path: '/next' })).text).toBe('after');
      expect(upstream.requests.map((r) => r.conn)).toEqual([0, 1]);
    });

    it('when a queued exchange is aborted then it never reaches the upstream', async () => {
      const heldBack: ServerResponse[] = [];
      const upstream = await startHttps((req, res, seen) => {
        if (req.url === '/hold') heldBack.push(res);
        else echo(req, res, seen);
      });
      const pool = poolTo(upstream.port, { connections: 1 });
      await fetchOk(pool, { path: '/warm' });
      const busy = send(pool, { path: '/hold' });
      const queued = send(pool, { path: '/queued' });
      expect(pool.queued).toBe(1);
      queued.exchange.abort();
      expect(pool.queued).toBe(0);
      await waitFor('held request arrived', () => heldBack.length === 1, { timeoutMs: 2000 });
      heldBack[0]!.end('released');
      await within(busy.recorder.settled, 2000, 'held request');
      expect(busy.recorder.text).toBe('released');
      const after = await fetchOk(pool, { path: '/after' });
      expect(JSON.parse(after.text)).toMatchObject({ path: '/after', conn: 0 });
      expect(upstream.seen.map((s) => s.path)).toEqual(['/warm', '/hold', '/after']);
      expect(queued.recorder.calls).toEqual([]);
    });
  });

  describe('close', () => {
    it('when the pool closes with a busy connection and a queued request then the queued one fails with UPSTREAM_POOL_CLOSED and the busy one finishes within the grace period', async () => {
      const heldBack: ServerResponse[] = [];
      const upstream = await startHttps((req, res) => {
        heldBack.push(res);
      });
      const pool = poolTo(upstream.port, { connections: 1 });
      const busy = send(pool, { path: '/busy' });
      const queued = send(pool, { path: '/queued' });
      await waitFor('busy request arrived', () => heldBack.length === 1, { timeoutMs: 2000 });
      const closing = pool.close(2000);
      expect(queued.recorder.error).toMatchObject({ code: 'UPSTREAM_POOL_CLOSED' });
      setTimeout(() => heldBack[0]!.end('finished'), 50);
      const started = Date.now();
      await within(closing, 2000, 'pool close');
      expect(Date.now() - started).toBeLessThan(1000);
      expect(busy.recorder.text).toBe('finished');
      expect(busy.recorder.calls.at(-1)).toBe('end');
      expect(pool.size).toBe(0);
      await waitFor('upstream saw the close', () => upstream.closed === 1, { timeoutMs: 2000 });
      expect(upstream.seen.map((s) => s.path)).toEqual(['/busy']);

      const late = await fetchError(pool, { path: '/late' });
      expect(late).toMatchObject({ code: 'UPSTREAM_POOL_CLOSED' });
    });

    it('when the pool closes with idle connections then they are closed at once', async () => {
      const upstream = await startHttps(echo);
      const pool = poolTo(upstream.port);
      await Promise.all([fetchOk(pool, { path: '/a' }), fetchOk(pool, { path: '/b' })]);
      expect(upstream.sockets).toHaveLength(2);
      const started = Date.now();
      await within(pool.close(5000), 1000, 'pool close');
      expect(Date.now() - started).toBeLessThan(500);
      expect(pool.size).toBe(0);
      await waitFor('upstream saw both close', () => upstream.closed === 2, { timeoutMs: 2000 });
    });

    it('when the grace period ends with an exchange still in flight then it fails with UPSTREAM_POOL_CLOSED', async () => {
      // Regression: the pool's own shutdown used to be reported as the upstream
      // closing the connection (502 upstream_reset).
      const upstream = await startHttps(() => undefined);
      const pool = poolTo(upstream.port);
      const { recorder } = send(pool, { path: '/forever' });
      await waitFor('request arrived', () => upstream.seen.length === 1, { timeoutMs: 2000 });
      await within(pool.close(100), 1000, 'pool close');
      await within(recorder.settled, 1000, 'cut exchange');
      expect(recorder.error).toMatchObject({ code: 'UPSTREAM_POOL_CLOSED' });
    });
  });

  describe('TLS', () => {
    it('when the pool connects then the upstream sees the client certificate from the test CA', async () => {
      const upstream = await startHttps(echo);
      const pool = poolTo(upstream.port);
      await fetchOk(pool);
      const expected = new X509Certificate(pki.server.cert).serialNumber;
      expect(upstream.seen[0]!.serial?.toUpperCase()).toBe(expected.toUpperCase());
      expect(upstream.sockets[0]!.authorized).toBe(true);
    });

    it.each(['TLSv1.2', 'TLSv1.3'] as const)(
      'when a second connection is opened (%s) then it resumes the TLS session of the first and still presents the certificate',
      async (maxVersion) => {
        const upstream = await startHttps(
          (req, res, seen) => {
            res.setHeader('connection', 'close');
            echo(req, res, seen);
          },
          { maxVersion },
        );
        const pool = poolTo(upstream.port);
        await fetchOk(pool, { path: '/first' });
        await fetchOk(pool, { path: '/second' });
        expect(upstream.sockets).toHaveLength(2);
        expect(upstream.handshakes).toEqual([
          { protocol: maxVersion, resumed: false },
          { protocol: maxVersion, resumed: true },
        ]);
        const expected = new X509Certificate(pki.server.cert).serialNumber.toUpperCase();
        expect(upstream.seen.map((s) => s.serial?.toUpperCase())).toEqual([expected, expected]);
      },
    );
  });
});
