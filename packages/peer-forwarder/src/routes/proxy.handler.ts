import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorBody } from '@rps/common';
import type { AccessDecision, AccessList } from '../services/access-list.service';
import type { AccessLog } from '../services/access-log.service';
import { addressKey, displayAddress } from '../services/cidr.matcher';
import type { ForwarderMetrics } from '../services/forwarder.metrics';
import {
  downstreamResponseHeaders,
  loggablePath,
  upstreamRequestHeaders,
} from '../services/proxy-headers.service';
import { classifyUpstreamError, type UpstreamErrorKind } from '../services/upstream-error.service';
import type { PoolExchange, PoolRequest, PoolResponseHandler } from '../services/upstream-pool.service';
import type { Upstream } from '../services/upstream.service';
import type { ForwarderLimits } from '../forwarder.options';
import type { ConnectionCaps } from '../services/connection-caps.service';
import { ResponseSpool, type SpoolLimits } from '../services/response-spool.service';

/** Everything one route's handlers need. */
export interface RouteContext {
  route: string;
  upstream: Upstream;
  accessList: AccessList;
  metrics: ForwarderMetrics;
  /** The access log: one line per request. */
  accessLog: AccessLog;
  timeouts: { connectMs: number; headersMs: number };
  /** `forwarder.limits`: bounds on each phase of a peer connection. */
  limits: ForwarderLimits;
  /** Open connections per source, shared by all routes. */
  caps: ConnectionCaps;
  /** The response buffering limits, from `limits`. */
  spool: SpoolLimits;
}

/** Status logged and counted when the peer went away before the answer was complete (nginx's convention). */
export const CLIENT_CLOSED = 499;

/** Writes a JSON error answer and closes the connection: the peer's unread body is not worth draining. */
export function sendJsonError(res: ServerResponse, status: number, body: ErrorBody): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    connection: 'close',
  });
  res.end(payload);
}

/**
 * The same JSON error answer written straight on a raw socket, which then
 * lingers (see endAndLinger): for the fast path, upgrades and Node's client
 * errors, where no ServerResponse exists.
 */
export function endWithJsonError(socket: Socket, status: number, body: ErrorBody, lingerMs: number): void {
  const payload = JSON.stringify(body);
  endAndLinger(
    socket,
    lingerMs,
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(payload)}\r\n` +
      'connection: close\r\n\r\n' +
      payload,
  );
}

/**
 * Ends our side of a connection that carries no more requests and releases
 * it: input is read and discarded (destroying a socket with unread input
 * sends a reset, which can wipe the answer from the peer's buffer before it
 * reads it), and the socket is destroyed when the peer closes its side or
 * after `lingerMs`, whichever comes first, never left half-open (the
 * listener allows half-open sockets, as Node's HTTP server does).
 */
export function endAndLinger(socket: Socket, lingerMs: number, data = ''): void {
  if (socket.destroyed) return;
  socket.on('error', noop);
  const release = () => socket.destroy();
  if (socket.readableEnded) {
    socket.end(data, release);
    return;
  }
  socket.once('end', release);
  const timer = setTimeout(release, lingerMs);
  socket.once('close', () => clearTimeout(timer));
  socket.resume();
  socket.end(data);
}

/** The 408 body for a peer that was too slow to send its request. */
export function requestTimeoutBody(what: string): ErrorBody {
  return { error: what, code: 'request_timeout', details: [] };
}

/** The 403 body for a source that is neither a registered peer nor in `forwarder.allow`. */
export function forbiddenBody(source: string): ErrorBody {
  return {
    error: `source ${source} is not a registered peer and not in forwarder.allow`,
    code: 'forbidden_source',
    details: [],
  };
}

/** Shared bookkeeping of one exchange: access log line and metrics, exactly once. */
export class ExchangeLog {
  bytesIn = 0;
  bytesOut = 0;
  private done = false;
  private readonly started = performance.now();

  constructor(
    private readonly ctx: RouteContext,
    private readonly method: string,
    private readonly url: string,
    readonly source: string,
    private readonly access: AccessDecision,
  ) {}

  finish(status: number, failure?: { kind: UpstreamErrorKind; error: string }): void {
    if (this.done) return;
    this.done = true;
    const { route, metrics, accessLog } = this.ctx;
    const seconds = (performance.now() - this.started) / 1000;
    metrics.countRequest(route, status, seconds, this.bytesIn, this.bytesOut);
    if (failure) metrics.upstreamErrors.inc({ route, kind: failure.kind });
    const a = this.access;
    accessLog.write({
      route,
      peer: a.allowed && a.via === 'peer' ? a.peerId : null,
      allowedBy: a.allowed && a.via === 'allow' ? a.cidr : undefined,
      source: this.source,
      method: this.method,
      path: loggablePath(this.url),
      status,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      ms: Math.round(seconds * 10_000) / 10,
      error: failure?.error,
    });
  }
}

/**
 * One request relayed through the upstream pool: the response is written to
 * the peer as it arrives, with backpressure both ways (the pool pauses the
 * peer's request body when the upstream socket is full; we hold the upstream
 * back when the peer's socket is full).
 */
class Exchange implements PoolResponseHandler {
  upstream: PoolExchange | undefined;
  private clientGone = false;
  /** Buffers the answer for a peer slower than the upstream (see ResponseSpool). */
  private spool: ResponseSpool | null = null;

  constructor(
    private readonly ctx: RouteContext,
    private readonly res: ServerResponse,
    private readonly log: ExchangeLog,
  ) {
    res.on('close', () => {
      this.spool?.dispose();
      if (res.writableFinished) return;
      this.clientGone = true;
      this.upstream?.abort();
      this.countUpload();
      this.log.finish(CLIENT_CLOSED);
    });
  }

  onHead(statusCode: number, statusMessage: string, rawHeaders: string[]): void {
    if (statusMessage) this.res.statusMessage = statusMessage;
    // Small answers arrive with their body in the same tick: corking sends
    // head and body in one write (one syscall) instead of two.
    this.res.cork();
    process.nextTick(uncork, this.res);
    this.res.writeHead(statusCode, downstreamResponseHeaders(rawHeaders));
  }

  onData(chunk: Buffer): boolean {
    this.log.bytesOut += chunk.length;
    // Most answers fit the socket's buffer: the spool is built only for one that does not.
    if (this.spool === null && this.res.writableLength + chunk.length < this.ctx.spool.memoryBytes) {
      this.res.write(chunk);
      return true;
    }
    this.spool ??= new ResponseSpool(this.ctx.spool, this.res, {
      resume: () => this.upstream?.resume(),
      stalled: () => this.stalled(),
    });
    return this.spool.push(chunk);
  }

  onEnd(): void {
    this.countUpload();
    if (this.spool) this.spool.end(() => this.finish());
    else this.finish();
  }

  private finish(): void {
    this.res.end();
    this.log.finish(this.res.statusCode);
  }

  /** The peer took nothing for writeStallMs: it must not hold the answer (or the upstream) any longer. */
  private stalled(): void {
    this.clientGone = true;
    this.log.finish(this.res.statusCode, {
      kind: 'peer',
      error: `response cut: peer took no response bytes for ${this.ctx.limits.writeStallMs} ms`,
    });
    this.upstream?.abort();
    this.res.destroy();
  }

  onError(err: Error): void {
    if (this.clientGone) return;
    this.countUpload();
    const failure = classifyUpstreamError(err, this.ctx.timeouts);
    const error = failure.body.error;
    if (this.res.headersSent) {
      // Too late for an error answer: cut the connection so the peer sees a
      // truncated response instead of a clean end.
      this.log.finish(this.res.statusCode, { kind: failure.kind, error: `response cut: ${error}` });
      this.res.destroy();
      return;
    }
    this.log.finish(failure.status, { kind: failure.kind, error });
    sendJsonError(this.res, failure.status, failure.body);
  }

  /** A streamed body is counted by what reached the upstream connection. */
  private countUpload(): void {
    if (this.upstream && this.log.bytesIn === 0) this.log.bytesIn = this.upstream.bodyBytesSent;
  }
}

const noop = () => undefined;

/** A connection's source, parsed once: keep-alive peers send many requests per connection. */
export interface SourceInfo {
  display: string;
  key: bigint | null;
}
const sources = new WeakMap<Socket, SourceInfo>();

export function sourceOf(socket: Socket): SourceInfo {
  let info = sources.get(socket);
  if (!info) {
    const remote = socket.remoteAddress;
    info = { display: displayAddress(remote ?? ''), key: remote === undefined ? null : addressKey(remote) };
    // A socket without an address yet (closed early) is not cached.
    if (remote !== undefined) sources.set(socket, info);
  }
  return info;
}
const uncork = (res: ServerResponse) => res.uncork();

/** The plain-HTTP request handler of one route. */
export function createRequestHandler(ctx: RouteContext): (req: IncomingMessage, res: ServerResponse) => void {
  const { upstream, accessList } = ctx;
  return (req, res) => {
    const { display: source, key } = sourceOf(req.socket);
    // Still decided per request: a removed peer's open connection is refused on its next request.
    const access = accessList.checkKey(key);
    const log = new ExchangeLog(ctx, req.method ?? '', req.url ?? '', source, access);
    if (!access.allowed) {
      log.finish(403);
      sendJsonError(res, 403, forbiddenBody(source));
      return;
    }
    const url = req.url ?? '';
    // Node's parser takes a repeated Host (and X-Forwarded-Host would carry
    // the last one): refused here as on the fast path. None is Node's call
    // (it answers 400 for HTTP/1.1; HTTP/1.0 has no Host rule).
    if (hostCount(req.rawHeaders) > 1) {
      log.finish(400);
      sendJsonError(res, 400, {
        error: 'request must not carry more than one Host header',
        code: 'bad_host',
        details: [],
      });
      return;
    }
    // Origin-form only: the original's vhosts had `ProxyRequests On`, an open
    // forward proxy; absolute-form targets are refused here.
    if (!url.startsWith('/')) {
      log.finish(400);
      sendJsonError(res, 400, { error: 'request target must be a path', code: 'bad_target', details: [] });
      return;
    }
    const length = contentLength(req);
    const chunked = req.headers['transfer-encoding'] !== undefined;
    const streamed = chunked || length > SMALL_BODY_MAX_BYTES;
    const exchange = new Exchange(ctx, res, log);
    const request = (body: Buffer | null, stream?: PoolRequest['stream']) => {
      exchange.upstream = upstream.pool.request(
        {
          method: req.method ?? 'GET',
          path: upstream.basePath + url,
          headers: upstreamRequestHeaders(req.rawHeaders, { address: source, proto: 'http' }),
          body,
          stream,
        },
        exchange,
      );
    };
    if (streamed) {
      req.on('error', noop);
      request(null, { source: req, length: chunked ? null : length });
    } else if (length > 0) {
      collectSmallBody(
        req,
        ctx.limits.bodyIdleMs,
        (body) => {
          log.bytesIn = body.length;
          request(body);
        },
        () => {
          log.finish(408);
          const what = `request body idle for ${ctx.limits.bodyIdleMs} ms`;
          sendJsonError(res, 408, requestTimeoutBody(what));
        },
      );
    } else {
      request(null);
    }
  };
}

/**
 * Bodies up to this size (status pushes, most Elasticsearch queries) are
 * read whole and sent with the request head in one TLS write; a streamed body
 * costs a second write per request (measured at ~0.6x the throughput with
 * undici). Larger or chunked bodies stream with backpressure.
 */
export const SMALL_BODY_MAX_BYTES = 64 * 1024;

/**
 * Reads a small body whole. Node's requestTimeout bounds the whole request;
 * silence inside the body is bounded here (`limits.bodyIdleMs`, then `idle`).
 */
function collectSmallBody(
  req: IncomingMessage,
  idleMs: number,
  done: (body: Buffer) => void,
  idle: () => void,
): void {
  const chunks: Buffer[] = [];
  const timer = setTimeout(idle, idleMs);
  req.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    timer.refresh();
  });
  req.on('error', noop);
  req.on('close', () => clearTimeout(timer));
  // A peer that goes away mid-body never reaches 'end'; the response's
  // 'close' handler logs it as 499.
  req.on('end', () => {
    clearTimeout(timer);
    done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
  });
}

function hostCount(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') n++;
  return n;
}

/** The declared body length; 0 when absent or unparseable (Node's parser already rejected bad values). */
function contentLength(req: IncomingMessage): number {
  const value = req.headers['content-length'];
  return value === undefined ? 0 : Number(value) || 0;
}
