import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorBody } from '@rps/common';
import type { RequestHead } from '../services/http1.parser';
import { readFastRequest } from '../services/fast-request.parser';
import { downstreamResponseHeaders, upstreamRequestHeaders } from '../services/proxy-headers.service';
import { classifyUpstreamError } from '../services/upstream-error.service';
import type { PoolExchange, PoolResponseHandler } from '../services/upstream-pool.service';
import {
  CLIENT_CLOSED,
  endWithJsonError,
  ExchangeLog,
  forbiddenBody,
  SMALL_BODY_MAX_BYTES,
  sourceOf,
  type RouteContext,
  type SourceInfo,
} from './proxy.handler';

/**
 * The fast path of a route listener: serves the request shape that nearly
 * every peer sends (HTTP/1.1, origin-form target, no body or a
 * Content-Length body up to 64 KiB, the whole head in one read) straight on
 * the connection, without building Node's IncomingMessage/ServerResponse
 * pair. Measured (docs/forwarder.md) that pair and its events cost about a
 * third of the relay's CPU per request.
 *
 * Anything else (chunked or large uploads, Expect, upgrades, HTTP/1.0, a head
 * split over reads, anything this strict parser does not accept) hands the
 * whole connection, unread bytes included, to Node's HTTP server
 * (`proxy.handler.ts`), which serves it from then on, with its own parser's
 * checks and error answers. Both paths share the access decision, header
 * hygiene, upstream pool, access log and metrics.
 */

/** Node's default header size limit: a larger head goes to Node's server, which answers 431. */
const MAX_HEAD_BYTES = 16 * 1024;
/** What the fast path serves itself (services/fast-request.parser.ts decides). */
export const FAST_LIMITS = { maxHeadBytes: MAX_HEAD_BYTES, maxBodyBytes: SMALL_BODY_MAX_BYTES };
/** Unread bytes beyond the request in progress (a pipelining peer) before reading stops. */
const MAX_BUFFERED_BYTES = 128 * 1024;
const EMPTY = Buffer.alloc(0);

/** The fast path of one route; one per listener. */
export class FastPath {
  readonly connections = new Set<PeerConnection>();
  closing = false;
  readonly keepAliveLine: string;

  constructor(
    readonly ctx: RouteContext,
    /** Gives a connection to Node's HTTP server (its own 'connection' listener). */
    readonly handOff: (socket: Socket) => void,
    /** Idle time after which a keep-alive connection is closed (Node's `keepAliveTimeout`). */
    readonly keepAliveTimeoutMs: number,
  ) {
    this.keepAliveLine = `keep-alive: timeout=${Math.floor(keepAliveTimeoutMs / 1000)}\r\n`;
  }

  /** The listener's 'connection' handler. */
  accept(socket: Socket): void {
    this.connections.add(new PeerConnection(this, socket));
  }

  /** Shutdown: idle connections are closed now, busy ones after their answer. */
  close(): void {
    this.closing = true;
    for (const conn of this.connections) conn.closeIfIdle();
  }
}

/** One peer connection on the fast path, one request at a time. */
class PeerConnection implements PoolResponseHandler {
  private buf: Buffer = EMPTY;
  /** A request is being read or relayed. */
  private busy = false;
  /** Body bytes still to arrive before the request can be relayed. */
  private bodyNeeded = 0;
  private head: RequestHead | null = null;
  private closeAfter = false;
  private log: ExchangeLog | null = null;
  private upstream: PoolExchange | null = null;
  private status = 0;
  private headSent = false;
  private chunkedOut = false;
  private noBody = false;
  private done = false;
  private readonly source: SourceInfo;
  private readonly onSocketData = (chunk: Buffer) => this.received(chunk);
  private readonly onTimeout = () => this.timedOut();
  private readonly onClose = () => this.closed();
  private readonly onSocketEnd = () => this.peerEnded();
  private readonly onDrain = () => this.upstream?.resume();

  constructor(
    private readonly fp: FastPath,
    private readonly socket: Socket,
  ) {
    this.source = sourceOf(socket);
    socket.setTimeout(fp.keepAliveTimeoutMs);
    socket.on('data', this.onSocketData);
    socket.on('timeout', this.onTimeout);
    socket.on('error', noop);
    socket.on('close', this.onClose);
    socket.on('end', this.onSocketEnd);
  }

  closeIfIdle(): void {
    if (!this.busy && !this.done) this.finishConnection();
  }

  private received(chunk: Buffer): void {
    if (this.done) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (!this.busy) {
      this.next();
      return;
    }
    if (this.bodyNeeded > 0 && this.buf.length >= this.bodyNeeded) this.relayWithBody();
    else if (this.buf.length > this.bodyNeeded + MAX_BUFFERED_BYTES) this.socket.pause();
  }

  /** Starts on the next request in the buffer, if its head is complete. */
  private next(): void {
    if (this.buf.length === 0) return;
    const request = readFastRequest(this.buf, FAST_LIMITS);
    if (request.kind === 'handoff') {
      // Node's server has the timeouts and limits for slow or large heads,
      // and its parser decides what is malformed and answers it.
      this.handOff();
      return;
    }
    const { head, bodyLength: length } = request;
    if (request.close) this.closeAfter = true;
    this.busy = true;
    this.head = head;
    this.buf = this.buf.subarray(request.headBytes);
    const access = this.fp.ctx.accessList.checkKey(this.source.key);
    this.log = new ExchangeLog(this.fp.ctx, head.method, head.target, this.source.display, access);
    if (!access.allowed) {
      this.log.finish(403);
      this.answerError(403, forbiddenBody(this.source.display));
      return;
    }
    if (length === 0) this.relay(null);
    else {
      this.bodyNeeded = length;
      if (this.buf.length >= length) this.relayWithBody();
    }
  }

  private relayWithBody(): void {
    const n = this.bodyNeeded;
    const body = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.bodyNeeded = 0;
    this.log!.bytesIn = n;
    this.relay(body);
  }

  private relay(body: Buffer | null): void {
    const head = this.head!;
    const { upstream } = this.fp.ctx;
    this.upstream = upstream.pool.request(
      {
        method: head.method,
        path: upstream.basePath + head.target,
        headers: upstreamRequestHeaders(head.rawHeaders, { address: this.source.display, proto: 'http' }),
        body,
      },
      this,
    );
  }

  onHead(statusCode: number, statusMessage: string, rawHeaders: string[]): void {
    if (this.done) return;
    const headers = downstreamResponseHeaders(rawHeaders);
    let out = `HTTP/1.1 ${statusCode} ${statusMessage || STATUS_CODES[statusCode] || ''}\r\n`;
    let hasLength = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (name.length === 14 && name.toLowerCase() === 'content-length') hasLength = true;
      out += `${name}: ${headers[i + 1]}\r\n`;
    }
    this.status = statusCode;
    this.noBody = this.head!.method === 'HEAD' || statusCode === 204 || statusCode === 304;
    this.chunkedOut = !this.noBody && !hasLength;
    if (this.chunkedOut) out += 'transfer-encoding: chunked\r\n';
    out += this.closeAfter || this.fp.closing ? 'connection: close\r\n\r\n' : `${this.fp.keepAliveLine}\r\n`;
    // Small answers arrive with their body in the same tick: corked, head and
    // body leave in one write.
    this.socket.cork();
    process.nextTick(uncork, this.socket);
    this.socket.write(out, 'latin1');
    this.headSent = true;
  }

  onData(chunk: Buffer): boolean {
    if (this.done) return true;
    this.log!.bytesOut += chunk.length;
    if (this.noBody) return true;
    let ok: boolean;
    if (this.chunkedOut) {
      this.socket.cork();
      this.socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      this.socket.write(chunk);
      ok = this.socket.write('\r\n', 'latin1');
      this.socket.uncork();
    } else ok = this.socket.write(chunk);
    if (!ok) this.socket.once('drain', this.onDrain);
    return ok;
  }

  onEnd(): void {
    if (this.done) return;
    if (this.chunkedOut) this.socket.write('0\r\n\r\n', 'latin1');
    this.log!.finish(this.status);
    this.endExchange();
  }

  onError(err: Error): void {
    if (this.done) return;
    const log = this.log!;
    const failure = classifyUpstreamError(err, this.fp.ctx.timeouts);
    const error = failure.body.error;
    if (this.headSent) {
      // Too late for an error answer: cut the connection so the peer sees a
      // truncated response instead of a clean end.
      log.finish(this.status, { kind: failure.kind, error: `response cut: ${error}` });
      this.done = true;
      this.socket.destroy();
      return;
    }
    log.finish(failure.status, { kind: failure.kind, error });
    this.answerError(failure.status, failure.body);
  }

  /** The exchange is over: next request, or close. */
  private endExchange(): void {
    this.busy = false;
    this.head = null;
    this.log = null;
    this.upstream = null;
    this.headSent = false;
    this.status = 0;
    if (this.closeAfter || this.fp.closing) {
      this.finishConnection();
      return;
    }
    if (this.socket.isPaused()) this.socket.resume();
    this.next();
  }

  /** An error answer (JSON, the project's shape); the connection closes after it. */
  private answerError(status: number, body: ErrorBody): void {
    endWithJsonError(this.socket, status, body);
    this.stop();
  }

  private finishConnection(): void {
    this.socket.end();
    this.stop();
  }

  /** No more requests on this connection. */
  private stop(): void {
    this.done = true;
    this.buf = EMPTY;
    this.socket.off('data', this.onSocketData);
    this.socket.resume(); // discard whatever the peer still sends until it closes
  }

  /** The peer closed its sending side: the request in progress is answered, then the connection closes. */
  private peerEnded(): void {
    if (this.done) return;
    if (this.busy && this.bodyNeeded > 0) {
      // The body will never be complete: nothing was relayed.
      this.log?.finish(CLIENT_CLOSED);
      this.finishConnection();
    } else if (!this.busy) this.finishConnection();
    else this.closeAfter = true;
  }

  private timedOut(): void {
    if (this.busy) {
      // A slow upstream is the upstream pool's to time out; keep watching.
      this.socket.setTimeout(this.fp.keepAliveTimeoutMs);
      return;
    }
    this.socket.destroy();
  }

  private closed(): void {
    this.fp.connections.delete(this);
    if (this.busy && !this.done) {
      this.done = true;
      this.upstream?.abort();
      this.log?.finish(CLIENT_CLOSED);
    }
    this.done = true;
  }

  /** Gives the connection, with its unread bytes, to Node's HTTP server for good. */
  private handOff(): void {
    const socket = this.socket;
    this.done = true;
    this.fp.connections.delete(this);
    socket.off('data', this.onSocketData);
    socket.off('timeout', this.onTimeout);
    socket.off('close', this.onClose);
    socket.off('end', this.onSocketEnd);
    socket.off('error', noop);
    socket.setTimeout(0);
    if (this.buf.length > 0) socket.unshift(this.buf);
    this.buf = EMPTY;
    this.fp.handOff(socket);
  }
}

const noop = () => undefined;
const uncork = (socket: Socket) => socket.uncork();
