import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import { Http1ParseError, ResponseParser, type ResponseHead } from './http1.parser';

/**
 * The forwarder's HTTP/1.1 client towards IVIS-core: a keep-alive pool of TLS
 * connections, one request at a time per connection (no pipelining), written
 * for this relay's one job. It replaced undici's `Pool` by measurement
 * (docs/forwarder.md, "Benchmark"): per relayed request undici cost about
 * 55 µs of CPU here, which kept the forwarder below Apache's throughput. What
 * it does not do, it does not need: no redirects, no retries (a reused
 * connection that fails is the request's failure, as in Apache's mod_proxy),
 * no HTTP/2, no upgrades (http-proxy relays those).
 *
 * TLS is Node's: the client certificate is answered also when the server
 * asks for it by renegotiation (IVIS-core's Apache does, under /rest/remote),
 * sessions are resumed, the server is verified against the CA and its name.
 */

/** Why an upstream exchange failed, besides socket and TLS errors (which keep their own codes). */
export type UpstreamErrorCode =
  | 'UPSTREAM_CONNECT_TIMEOUT'
  | 'UPSTREAM_HEADERS_TIMEOUT'
  | 'UPSTREAM_BODY_TIMEOUT'
  | 'UPSTREAM_CLOSED'
  | 'UPSTREAM_POOL_CLOSED'
  | 'UPSTREAM_UPLOAD_STALLED'
  | 'UPSTREAM_BODY_LENGTH'
  | 'UPSTREAM_QUEUE_TIMEOUT';

export class UpstreamError extends Error {
  constructor(
    readonly code: UpstreamErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UpstreamError';
  }
}

/** Connection and timing limits of one pool (forwarder.upstream.*). */
export interface PoolLimits {
  /** Most connections open at once; further requests wait in order. */
  connections: number;
  /** Close an idle connection after this long (lowered to what the server announces in `Keep-Alive: timeout=`). */
  keepAliveTimeoutMs: number;
  /** TCP connect plus TLS handshake. */
  connectTimeoutMs: number;
  /** Request sent until the response head arrived (no progress for this long). */
  headersTimeoutMs: number;
  /** No response body bytes for this long (not counted while the peer's side holds us back); also how long the upstream may stop taking an upload. */
  bodyTimeoutMs: number;
  /** Longest wait for a free connection (`forwarder.limits.queueMs`); then the request fails (503). */
  queueTimeoutMs: number;
  /** Longest silence of the peer inside a streamed upload (`forwarder.limits.bodyIdleMs`); then 408. */
  uploadIdleMs: number;
}

/** TLS material of the client side. */
export interface PoolTls {
  cert: string | Buffer;
  key: string | Buffer;
  /** Trust anchors; absent: Node's root store. */
  ca?: string | Buffer;
}

/** One request to relay. `headers` must not carry Host or framing headers: the pool writes those. */
export interface PoolRequest {
  method: string;
  /** Origin-form target (path and query). */
  path: string;
  /** Flat `[name, value, ...]`. */
  headers: readonly string[];
  /** A whole body (sent with the head in one write), or null for none. */
  body: Buffer | null;
  /** A body to stream instead: with its declared length, or chunked when null. */
  stream?: { source: Readable; length: number | null };
}

/** Receives one response. After `onEnd` or `onError` nothing more is called. */
export interface PoolResponseHandler {
  /** The final response head; `rawHeaders` carries Content-Length only when it frames the body (or for HEAD, 204, 304). */
  onHead(statusCode: number, statusMessage: string, rawHeaders: string[]): void;
  /** Returns false to hold the upstream back until `PoolExchange.resume()`. */
  onData(chunk: Buffer): boolean;
  onEnd(): void;
  onError(err: Error): void;
}

/** The caller's handle on a request in flight. */
export interface PoolExchange {
  /** Stops the exchange (the peer went away): the connection is closed, the handler hears nothing more. */
  abort(): void;
  /** Lets response bytes flow again after `onData` returned false. */
  resume(): void;
  /** Request body bytes handed to the connection so far. */
  readonly bodyBytesSent: number;
}

const PAYLOAD_METHODS = new Set(['POST', 'PUT', 'PATCH']);
/** Margin below a server's announced keep-alive timeout, so we close first. */
const KEEP_ALIVE_MARGIN_MS = 1000;
/** Below this, an idle connection is not worth keeping. */
const MIN_IDLE_MS = 100;
const CRLF = '\r\n';

/** A keep-alive pool of TLS connections to one origin. */
export class UpstreamPool {
  private readonly idle: Connection[] = [];
  private readonly open = new Set<Connection>();
  private readonly waiting: Exchange[] = [];
  private connecting = 0;
  private closing = false;
  /** Latest TLS session, offered on new connections (resumption saves a full handshake). */
  session: Buffer | undefined;
  readonly connectOptions: tls.ConnectionOptions;
  /** The Host header sent upstream. */
  readonly hostHeader: string;

  constructor(
    origin: URL,
    secure: PoolTls,
    readonly limits: PoolLimits,
    /** Called for each connection that could not be established (for the log). */
    readonly onConnectionError: (err: Error) => void = () => undefined,
  ) {
    const host = origin.hostname.replace(/^\[|\]$/g, '');
    const port = Number(origin.port || 443);
    this.hostHeader = origin.host;
    this.connectOptions = {
      host,
      port,
      // SNI and the name check use the host name; an IP upstream is checked
      // against the certificate's IP SANs and sends no SNI (RFC 6066).
      ...(isIP(host) ? {} : { servername: host }),
      cert: secure.cert,
      key: secure.key,
      ...(secure.ca === undefined ? {} : { ca: secure.ca }),
      rejectUnauthorized: true,
    };
  }

  /** Connections open or being opened. */
  get size(): number {
    return this.open.size;
  }

  /** Requests waiting for a free connection. */
  get queued(): number {
    return this.waiting.length;
  }

  request(req: PoolRequest, handler: PoolResponseHandler): PoolExchange {
    const exchange = new Exchange(req, handler, this);
    if (this.closing) {
      exchange.fail(new UpstreamError('UPSTREAM_POOL_CLOSED', 'forwarder is shutting down'));
      return exchange;
    }
    // Hold a streamed body until a connection takes it.
    req.stream?.source.pause();
    const conn = this.idle.pop();
    if (conn) conn.assign(exchange);
    else {
      this.enqueue(exchange);
      this.waiting.push(exchange);
      this.grow();
    }
    return exchange;
  }

  /** Starts the wait limit of an exchange that found no free connection. */
  private enqueue(exchange: Exchange): void {
    exchange.queueTimer ??= setTimeout(() => {
      exchange.queueTimer = undefined;
      this.unqueue(exchange);
      exchange.fail(
        new UpstreamError(
          'UPSTREAM_QUEUE_TIMEOUT',
          `no free upstream connection within ${this.limits.queueTimeoutMs} ms (all ${this.limits.connections} busy)`,
        ),
      );
    }, this.limits.queueTimeoutMs);
  }

  /** Closes idle connections now and busy ones when their exchange ends (or after `graceMs`). */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    for (const exchange of this.waiting.splice(0))
      exchange.fail(new UpstreamError('UPSTREAM_POOL_CLOSED', 'forwarder is shutting down'));
    for (const conn of this.idle.splice(0)) conn.destroy();
    const deadline = Date.now() + graceMs;
    while (this.open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const cut = new UpstreamError(
      'UPSTREAM_POOL_CLOSED',
      `forwarder shut down before the answer was complete`,
    );
    for (const conn of [...this.open]) conn.abandon(cut);
  }

  /** @internal A connection is closing: it must not be handed out any more. */
  forget(conn: Connection): void {
    const i = this.idle.indexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
  }

  /** @internal An exchange that was not sent after all goes first in line again. */
  requeue(exchange: Exchange): void {
    if (exchange.finished) return;
    this.enqueue(exchange);
    this.waiting.unshift(exchange);
    this.grow();
  }

  /** @internal A waiting exchange was aborted by its caller. */
  unqueue(exchange: Exchange): void {
    const i = this.waiting.indexOf(exchange);
    if (i !== -1) this.waiting.splice(i, 1);
  }

  /** @internal A connection is ready for (another) request. */
  release(conn: Connection): void {
    const next = this.waiting.shift();
    if (next) {
      conn.assign(next);
      return;
    }
    if (this.closing) {
      conn.destroy();
      return;
    }
    conn.idleFor(this.limits.keepAliveTimeoutMs);
    this.idle.push(conn);
  }

  /** @internal */
  connected(conn: Connection): void {
    this.connecting--;
    this.release(conn);
  }

  /** @internal A connection could not be established: the oldest waiting request gets the error. */
  connectFailed(conn: Connection, err: Error): void {
    this.connecting--;
    this.open.delete(conn);
    this.onConnectionError(err);
    this.waiting.shift()?.fail(err);
    this.grow();
  }

  /** @internal */
  closed(conn: Connection): void {
    this.open.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
    this.grow();
  }

  /** Opens connections for waiting requests, up to the limit. */
  private grow(): void {
    while (
      this.waiting.length > this.connecting &&
      this.open.size < this.limits.connections &&
      !this.closing
    ) {
      this.connecting++;
      this.open.add(new Connection(this));
    }
  }
}

/** One request and its response, from the pool's side. */
class Exchange implements PoolExchange {
  conn: Connection | null = null;
  finished = false;
  /** A primer's answer closed its connection once: this exchange goes without one. */
  primerRefused = false;
  bodyBytesSent = 0;
  /** Runs while the exchange waits for a connection (queueTimeoutMs). */
  queueTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly req: PoolRequest,
    readonly handler: PoolResponseHandler,
    private readonly pool: UpstreamPool,
  ) {}

  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.dequeued();
    if (this.conn) this.conn.destroy();
    else this.pool.unqueue(this);
  }

  resume(): void {
    this.conn?.resumeResponse(this);
  }

  /** Ends the exchange with an error (once). */
  fail(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.dequeued();
    this.handler.onError(err);
  }

  /** A connection took it (or it ended): the wait limit is off. */
  dequeued(): void {
    if (this.queueTimer === undefined) return;
    clearTimeout(this.queueTimer);
    this.queueTimer = undefined;
  }
}

/**
 * Where a pool connection is (STYLE.md 14: one explicit value, each change
 * asserted). The request side and the response side of an exchange are not
 * independent: a response head before the whole upload is an early answer
 * (UploadingAnswered), and only a fully sent request can be answered into
 * reuse. The socket timeout follows the state (see timerOf).
 *
 * | state | exchange | the socket timeout bounds |
 * |---|---|---|
 * | Connecting | none | (connectTimer) TCP + TLS |
 * | Idle | none | keep-alive idle time |
 * | Priming | yes | the primer HEAD's answer (headersTimeoutMs) |
 * | Uploading | yes | a streamed body: peer silence (uploadIdleMs) or upstream not taking it (bodyTimeoutMs) |
 * | UploadingAnswered | yes | as Uploading; the response body flows meanwhile |
 * | Waiting | yes | the response head (headersTimeoutMs) |
 * | Receiving | yes | silence in the response body (bodyTimeoutMs) |
 * | Held | yes | nothing: the peer's side holds the response back (the peer's own bounds apply) |
 * | Closed / ConnectFailed | none | - |
 */
const enum State {
  Connecting,
  Idle,
  Priming,
  Uploading,
  UploadingAnswered,
  Waiting,
  Receiving,
  Held,
  Closed,
  ConnectFailed,
}

const STATE_NAMES = [
  'Connecting',
  'Idle',
  'Priming',
  'Uploading',
  'UploadingAnswered',
  'Waiting',
  'Receiving',
  'Held',
  'Closed',
  'ConnectFailed',
];

const bits = (...states: State[]) => states.reduce((mask, s) => mask | (1 << s), 0);
const REQUEST_STARTS = [State.Priming, State.Uploading, State.Waiting] as const;
/** Legal next states of each state, as bit masks (checked on every change). */
const NEXT: readonly number[] = [
  /* Connecting */ bits(State.Idle, State.ConnectFailed),
  /* Idle */ bits(...REQUEST_STARTS, State.Idle, State.Closed),
  /* Priming */ bits(State.Uploading, State.Waiting, State.Closed),
  /* Uploading */ bits(State.UploadingAnswered, State.Waiting, State.Closed),
  /* UploadingAnswered */ bits(State.Receiving, State.Held, State.Closed),
  /* Waiting */ bits(State.Receiving, State.Closed),
  /* Receiving */ bits(State.Held, State.Idle, State.Closed),
  /* Held */ bits(State.Receiving, State.Idle, State.Closed),
  /* Closed */ 0,
  /* ConnectFailed */ 0,
];
const WITH_EXCHANGE = bits(
  State.Priming,
  State.Uploading,
  State.UploadingAnswered,
  State.Waiting,
  State.Receiving,
  State.Held,
);

/** What the socket timeout is set for: derived from the state, applied lazily (see onSocketData). */
const enum Timer {
  None,
  Headers,
  Body,
  Upload,
  Idle,
}

/** One TLS connection of the pool. */
class Connection {
  private readonly socket: tls.TLSSocket;
  private readonly parser: ResponseParser;
  private state = State.Connecting;
  /** The exchange in flight: set exactly in the states of WITH_EXCHANGE. */
  private exchange: Exchange | null = null;
  private socketError: Error | null = null;
  private connectTimer: NodeJS.Timeout | undefined;
  /** What the socket timeout is armed for now (a cache of the socket's setting). */
  private armed = Timer.None;
  // Facts about the connection's history and the last answer, not phases:
  /** The last response allows another request on this connection. */
  private keepAlive = true;
  private keepAliveLimitMs = Infinity;
  /** A bodiless request went first on this connection (see prime). */
  private primed = false;
  private requestsWritten = 0;
  /** The server renegotiated during a request: it has asked for (and got) the client certificate. */
  private certificateAsked = false;

  constructor(private readonly pool: UpstreamPool) {
    this.parser = new ResponseParser({
      onHead: (head) => this.onHead(head),
      onBody: (chunk) => this.onBody(chunk),
      onComplete: () => this.onComplete(),
    });
    this.socket = tls.connect({ ...pool.connectOptions, session: pool.session });
    this.socket.setNoDelay(true);
    this.connectTimer = setTimeout(() => {
      this.fatal(
        new UpstreamError(
          'UPSTREAM_CONNECT_TIMEOUT',
          `no TLS connection to ${pool.hostHeader} within ${pool.limits.connectTimeoutMs} ms`,
        ),
      );
    }, pool.limits.connectTimeoutMs);
    this.socket.once('secureConnect', () => {
      clearTimeout(this.connectTimer);
      if (this.state !== State.Connecting) return;
      this.to(State.Idle);
      pool.connected(this);
    });
    this.socket.on('session', (session: Buffer) => {
      // A new session once a request is under way is a TLS 1.2 renegotiation
      // (or TLS 1.3 tickets, where there is no renegotiation to fear).
      if (this.requestsWritten > 0 || this.state === State.Priming) this.certificateAsked = true;
      pool.session = session;
    });
    this.socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    this.socket.on('timeout', () => this.onTimeout());
    this.socket.on('error', (err: Error) => {
      this.socketError ??= err;
    });
    this.socket.on('end', () => this.onSocketEnd());
    this.socket.on('close', () => this.onSocketClose());
  }

  /** Changes state; an illegal change is a bug in this file, not a network event. */
  private to(next: State): void {
    if ((NEXT[this.state]! & (1 << next)) === 0)
      throw new Error(
        `upstream connection: illegal change ${STATE_NAMES[this.state]} -> ${STATE_NAMES[next]}`,
      );
    // An exchange exactly while one is in flight (Closed may still hold an aborted one).
    if (((WITH_EXCHANGE & (1 << next)) !== 0) !== (this.exchange !== null) && next !== State.Closed)
      throw new Error(
        `upstream connection: ${STATE_NAMES[next]} with${this.exchange ? '' : 'out'} an exchange`,
      );
    this.state = next;
  }

  private get dead(): boolean {
    return this.state === State.Closed || this.state === State.ConnectFailed;
  }

  assign(exchange: Exchange): void {
    exchange.dequeued();
    this.exchange = exchange;
    exchange.conn = this;
    const { req } = exchange;
    if (
      req.stream &&
      !exchange.primerRefused &&
      !this.primed &&
      !this.certificateAsked &&
      this.socket.getProtocol() === 'TLSv1.2'
    ) {
      this.prime(exchange);
      return;
    }
    this.writeRequest(exchange);
  }

  /**
   * IVIS-core's Apache asks for the client certificate by renegotiating when
   * a request under `/rest/remote` arrives, and must hold that request's body
   * meanwhile: past SSLRenegBufferSize (128 KiB by default) it answers 413. A
   * final status push carries up to 1 MB of job output. So before the first
   * large (streamed) upload on a TLS 1.2 connection (renegotiation does not
   * exist in 1.3) that has not been asked for the certificate yet, a
   * bodiless `HEAD` of the same path goes first: it lets the server
   * renegotiate while there is nothing to hold. Once per connection; the
   * answer to it is ignored (test/renegotiation.test.ts).
   */
  private prime(exchange: Exchange): void {
    this.primed = true;
    this.to(State.Priming);
    this.parser.reset('HEAD');
    this.socket.write(
      `HEAD ${exchange.req.path} HTTP/1.1${CRLF}host: ${this.pool.hostHeader}${CRLF}${CRLF}`,
      'latin1',
    );
    this.arm(Timer.Headers);
  }

  /** The primer's answer is in: the real request follows on this connection, or waits for another one. */
  private afterPrimer(): void {
    const exchange = this.exchange!;
    if (!this.keepAlive || this.parser.extraBytes > 0) {
      // Nothing of the real request was sent: it can go on another connection,
      // without a primer this time (an upstream that closes after every HEAD
      // must not keep it going round).
      exchange.primerRefused = true;
      this.exchange = null;
      exchange.conn = null;
      this.destroy();
      this.pool.requeue(exchange);
      return;
    }
    this.writeRequest(exchange);
  }

  private writeRequest(exchange: Exchange): void {
    const { req } = exchange;
    this.requestsWritten++;
    this.parser.reset(req.method);
    let head = `${req.method} ${req.path} HTTP/1.1${CRLF}host: ${this.pool.hostHeader}${CRLF}`;
    const h = req.headers;
    for (let i = 0; i < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}${CRLF}`;
    const stream = req.stream;
    if (stream) {
      head +=
        stream.length === null
          ? `transfer-encoding: chunked${CRLF}${CRLF}`
          : `content-length: ${stream.length}${CRLF}${CRLF}`;
      this.to(State.Uploading);
      this.socket.write(head, 'latin1');
      this.arm(Timer.Upload);
      this.pump(exchange, stream.source, stream.length);
      return;
    }
    const body = req.body;
    if (body && body.length > 0) {
      head += `content-length: ${body.length}${CRLF}${CRLF}`;
      // Head and body leave in one TLS record and one syscall.
      this.socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
      exchange.bodyBytesSent = body.length;
    } else {
      head += PAYLOAD_METHODS.has(req.method) ? `content-length: 0${CRLF}${CRLF}` : CRLF;
      this.socket.write(head, 'latin1');
    }
    this.to(State.Waiting);
    this.arm(Timer.Headers);
  }

  /** Streams a request body with backpressure; chunk-encodes it when its length is unknown. */
  private pump(exchange: Exchange, source: Readable, declared: number | null): void {
    const chunked = declared === null;
    const uploading = () => this.state === State.Uploading || this.state === State.UploadingAnswered;
    const onData = (chunk: Buffer) => {
      if (this.exchange !== exchange || !uploading()) return;
      exchange.bodyBytesSent += chunk.length;
      if (declared !== null && exchange.bodyBytesSent > declared) {
        // More than the head announced would be read upstream as the start of
        // another request: never send it.
        this.fatal(
          new UpstreamError(
            'UPSTREAM_BODY_LENGTH',
            `request body longer than its declared ${declared} bytes`,
          ),
        );
        return;
      }
      let ok: boolean;
      if (chunked) {
        if (chunk.length === 0) return;
        this.socket.cork();
        this.socket.write(`${chunk.length.toString(16)}${CRLF}`, 'latin1');
        this.socket.write(chunk);
        ok = this.socket.write(CRLF, 'latin1');
        this.socket.uncork();
      } else ok = this.socket.write(chunk);
      if (!ok) {
        source.pause();
        // Now the upstream is the slow side: its bound applies.
        this.arm(Timer.Upload, true);
        this.socket.once('drain', () => {
          if (this.exchange !== exchange || !uploading()) return;
          this.arm(Timer.Upload, true);
          source.resume();
        });
      }
    };
    const onEnd = () => {
      cleanup();
      if (this.exchange !== exchange || !uploading()) return;
      if (chunked) this.socket.write(`0${CRLF}${CRLF}`, 'latin1');
      // (An early complete answer destroyed the connection already: see onComplete.)
      if (this.state === State.Uploading) {
        this.to(State.Waiting);
        this.arm(Timer.Headers);
      } else if (this.socket.isPaused()) {
        this.to(State.Held);
        this.arm(Timer.None);
      } else {
        this.to(State.Receiving);
        this.arm(Timer.Body);
      }
    };
    const onAbort = () => {
      cleanup();
      // The peer went away mid-body: the upstream must not take a truncated
      // body for a whole one, so the connection goes.
      if (this.exchange === exchange && uploading()) this.destroy();
    };
    const cleanup = () => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('close', onClose);
      source.off('error', onAbort);
    };
    const onClose = () => {
      if (this.exchange === exchange && uploading()) onAbort();
    };
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('close', onClose);
    source.once('error', onAbort);
    source.resume();
  }

  resumeResponse(exchange: Exchange): void {
    if (this.exchange !== exchange) return;
    if (this.state === State.Held) {
      this.to(State.Receiving);
      this.arm(Timer.Body);
      this.socket.resume();
    } else if (this.state === State.UploadingAnswered && this.socket.isPaused()) this.socket.resume();
  }

  idleFor(ms: number): void {
    this.to(State.Idle);
    this.arm(Timer.Idle, true, Math.min(ms, this.keepAliveLimitMs));
  }

  destroy(): void {
    if (this.dead) return;
    this.to(this.state === State.Connecting ? State.ConnectFailed : State.Closed);
    clearTimeout(this.connectTimer);
    // Out of the idle list at once: 'close' comes a loop phase later, and a
    // request in between must not get a dead connection.
    this.pool.forget(this);
    this.socket.destroy();
  }

  /** Shutdown after the grace period: the exchange fails as cut by us, not by the upstream. */
  abandon(err: Error): void {
    this.fatal(err);
  }

  private onSocketData(chunk: Buffer): void {
    if (!this.exchange) {
      // Bytes nobody asked for: the connection is out of step.
      this.destroy();
      return;
    }
    try {
      this.parser.execute(chunk);
    } catch (err) {
      if (!(err instanceof Http1ParseError)) throw err;
      this.fatal(err);
      return;
    }
    // Armed here rather than in onHead: most answers complete in the chunk
    // that brought their head, and then the idle timer is the next one.
    if (this.state === State.Receiving && this.armed === Timer.Headers) this.arm(Timer.Body);
  }

  private onHead(head: ResponseHead): void {
    const exchange = this.exchange!;
    this.keepAlive = head.keepAlive;
    if (this.state === State.Priming) return;
    this.to(this.state === State.Uploading ? State.UploadingAnswered : State.Receiving);
    const limit = keepAliveLimit(head.rawHeaders);
    if (limit !== undefined) {
      this.keepAliveLimitMs = limit;
      // The server closes idle connections too soon for us to close them first.
      if (limit < MIN_IDLE_MS) this.keepAlive = false;
    }
    // A Content-Length beside chunked or until-close framing does not describe
    // the body the handler will get: it must not be relayed.
    const k = head.framing.kind;
    const raw = k === 'chunked' || k === 'close' ? withoutContentLength(head.rawHeaders) : head.rawHeaders;
    if (!exchange.finished) exchange.handler.onHead(head.statusCode, head.statusMessage, raw);
  }

  private onBody(chunk: Buffer): void {
    const exchange = this.exchange!;
    if (exchange.finished) return;
    if (exchange.handler.onData(chunk) || this.socket.isPaused()) return;
    this.socket.pause();
    if (this.state === State.Receiving) {
      // Our peer is slow, not the upstream: no body timeout while held back.
      this.to(State.Held);
      this.arm(Timer.None);
    }
  }

  private onComplete(): void {
    if (this.state === State.Priming) {
      this.afterPrimer();
      return;
    }
    const exchange = this.exchange!;
    const early = this.state === State.UploadingAnswered;
    this.exchange = null;
    exchange.conn = null;
    if (!exchange.finished) {
      exchange.finished = true;
      exchange.handler.onEnd();
    }
    // An early answer (e.g. 413 before the whole upload): the rest of the
    // body would be read as the next request, so the connection goes.
    if (early || this.dead || !this.keepAlive || this.parser.extraBytes > 0) {
      this.destroy();
      return;
    }
    // Held back for the last bytes of the previous answer: the next one must flow.
    if (this.socket.isPaused()) this.socket.resume();
    this.to(State.Idle);
    this.pool.release(this);
  }

  private onTimeout(): void {
    const limits = this.pool.limits;
    switch (this.state) {
      case State.Idle:
        this.destroy();
        return;
      case State.Priming:
      case State.Waiting:
        this.fatal(
          new UpstreamError('UPSTREAM_HEADERS_TIMEOUT', `no response within ${limits.headersTimeoutMs} ms`),
        );
        return;
      case State.Receiving:
        this.fatal(
          new UpstreamError('UPSTREAM_BODY_TIMEOUT', `response body stalled for ${limits.bodyTimeoutMs} ms`),
        );
        return;
      case State.Uploading:
      case State.UploadingAnswered:
        // Blocked on a full socket: the upstream stopped reading. Otherwise
        // the peer stopped sending.
        this.fatal(
          this.socket.writableNeedDrain
            ? new UpstreamError(
                'UPSTREAM_BODY_TIMEOUT',
                `upstream took no request body bytes for ${limits.bodyTimeoutMs} ms`,
              )
            : new UpstreamError(
                'UPSTREAM_UPLOAD_STALLED',
                `peer sent no request body bytes for ${limits.uploadIdleMs} ms`,
              ),
        );
        return;
      default:
    }
  }

  /**
   * Sets the socket timeout for `kind` (unchanged when already armed for it,
   * unless `force`): Upload's length depends on which side is slow now.
   */
  private arm(kind: Timer, force = false, ms?: number): void {
    if (this.armed === kind && !force) return;
    this.armed = kind;
    const limits = this.pool.limits;
    let value = 0;
    if (kind === Timer.Headers) value = limits.headersTimeoutMs;
    else if (kind === Timer.Body) value = limits.bodyTimeoutMs;
    else if (kind === Timer.Upload)
      value = this.socket.writableNeedDrain ? limits.bodyTimeoutMs : limits.uploadIdleMs;
    else if (kind === Timer.Idle) value = ms ?? limits.keepAliveTimeoutMs;
    this.socket.setTimeout(value);
  }

  private onSocketEnd(): void {
    // The server closed its side: an until-close body ends here; a keep-alive
    // connection closed while idle just leaves the pool.
    if (this.exchange) {
      try {
        this.parser.end();
      } catch (err) {
        if (!(err instanceof Http1ParseError)) throw err;
        const closed = new UpstreamError(
          'UPSTREAM_CLOSED',
          this.parser.untouched ? 'upstream closed the connection before answering' : err.message,
        );
        this.fatal(closed);
        return;
      }
    }
    this.destroy();
  }

  private onSocketClose(): void {
    clearTimeout(this.connectTimer);
    const neverConnected = this.state === State.Connecting || this.state === State.ConnectFailed;
    if (!this.dead) this.to(neverConnected ? State.ConnectFailed : State.Closed);
    const err =
      this.socketError ??
      new UpstreamError('UPSTREAM_CLOSED', 'upstream closed the connection before answering');
    if (neverConnected) {
      this.pool.connectFailed(this, err);
      return;
    }
    const exchange = this.exchange;
    this.exchange = null;
    if (exchange) exchange.fail(err);
    this.pool.closed(this);
  }

  /** Fails the current exchange (or the connection attempt) with `err` and closes the connection. */
  private fatal(err: Error): void {
    this.socketError ??= err;
    const exchange = this.exchange;
    if (exchange) {
      this.exchange = null;
      exchange.fail(err);
    }
    this.destroy();
  }
}

function withoutContentLength(rawHeaders: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== 'content-length') out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return out;
}

/** `Keep-Alive: timeout=N` of a response, minus a margin, in ms; undefined when absent. */
function keepAliveLimit(rawHeaders: readonly string[]): number | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length !== 10 || name.toLowerCase() !== 'keep-alive') continue;
    const m = /(?:^|[,\s])timeout=(\d+)/i.exec(rawHeaders[i + 1]!);
    if (m) return Math.max(0, Number(m[1]) * 1000 - KEEP_ALIVE_MARGIN_MS);
  }
  return undefined;
}
