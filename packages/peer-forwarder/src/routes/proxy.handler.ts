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

/** Everything one route's handlers need. */
export interface RouteContext {
  route: string;
  upstream: Upstream;
  accessList: AccessList;
  metrics: ForwarderMetrics;
  /** The access log: one line per request. */
  accessLog: AccessLog;
  timeouts: { connectMs: number; headersMs: number };
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
 * The same JSON error answer written straight on a raw socket, which is then
 * ended: for the fast path and for upgrades, where no ServerResponse exists.
 */
export function endWithJsonError(socket: Socket, status: number, body: ErrorBody): void {
  const payload = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(payload)}\r\n` +
      'connection: close\r\n\r\n' +
      payload,
  );
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

  constructor(
    private readonly ctx: RouteContext,
    private readonly res: ServerResponse,
    private readonly log: ExchangeLog,
  ) {
    res.on('close', () => {
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
    if (this.res.write(chunk)) return true;
    this.res.once('drain', () => this.upstream?.resume());
    return false;
  }

  onEnd(): void {
    this.res.end();
    this.countUpload();
    this.log.finish(this.res.statusCode);
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
      collectSmallBody(req, (body) => {
        log.bytesIn = body.length;
        request(body);
      });
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

function collectSmallBody(req: IncomingMessage, done: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('error', noop);
  // A peer that goes away mid-body never reaches 'end'; the response's
  // 'close' handler logs it as 499.
  req.on('end', () => done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
}

/** The declared body length; 0 when absent or unparseable (Node's parser already rejected bad values). */
function contentLength(req: IncomingMessage): number {
  const value = req.headers['content-length'];
  return value === undefined ? 0 : Number(value) || 0;
}
