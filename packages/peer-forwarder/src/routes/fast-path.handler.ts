import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorBody } from '@rps/common';
import type { RequestHead } from '../services/http1.parser';
import { readFastRequest } from '../services/fast-request.parser';
import { downstreamResponseHeaders, upstreamRequestHeaders } from '../services/proxy-headers.service';
import { classifyUpstreamError } from '../services/upstream-error.service';
import type { PoolExchange, PoolResponseHandler } from '../services/upstream-pool.service';
import { ResponseSpool, type SpoolSink } from '../services/response-spool.service';
import {
  CLIENT_CLOSED,
  endAndLinger,
  endWithJsonError,
  ExchangeLog,
  forbiddenBody,
  requestTimeoutBody,
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
 *
 * Every phase of a connection is bounded (`forwarder.limits`, see Phase), and
 * a connection that carries no more requests is released after a short
 * linger, never left half-open.
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
  ) {
    this.keepAliveLine = `keep-alive: timeout=${Math.floor(ctx.limits.keepAliveMs / 1000)}\r\n`;
  }

  /**
   * The listener's 'connection' handler. The source is known now, so the
   * access decision and the per-source cap come before any byte is read: a
   * stranger gets its 403 at once (no head to wait for, no slowloris), and
   * one over its cap is dropped without an answer.
   */
  accept(socket: Socket): void {
    const { ctx } = this;
    const source = sourceOf(socket);
    const key = source.key;
    if (key === null) {
      socket.destroy();
      return;
    }
    const access = ctx.accessList.checkKey(key);
    if (!ctx.caps.admit(key, access.allowed)) {
      socket.destroy();
      return;
    }
    socket.once('close', () => ctx.caps.release(key));
    if (!access.allowed) {
      // Logged without method and path: no request was read.
      new ExchangeLog(ctx, '', '', source.display, access).finish(403);
      endWithJsonError(socket, 403, forbiddenBody(source.display), ctx.limits.lingerMs);
      return;
    }
    this.connections.add(new PeerConnection(this, socket, source));
  }

  /** Shutdown: idle connections are closed now, busy ones after their answer. */
  close(): void {
    this.closing = true;
    for (const conn of this.connections) conn.closeIfIdle();
  }
}

/**
 * Where a fast-path connection is; each phase has its bound (`forwarder.limits`):
 *
 * | phase | waits for | bound |
 * |---|---|---|
 * | Head | the first request, in one read | `headMs`, then 408 |
 * | Idle | the next request (keep-alive) | `keepAliveMs`, then closed |
 * | Body | the rest of a small body | `bodyIdleMs` of silence, `requestMs` in all, then 408 |
 * | Relaying | the upstream's answer, and the peer to take it | the pool's timeouts; `writeStallMs` (ResponseSpool) |
 * | Released | nothing: ended, lingering or handed to Node | `lingerMs` (endAndLinger) |
 */
const enum Phase {
  Head,
  Idle,
  Body,
  Relaying,
  Released,
}

/** Legal moves between phases (STYLE.md 14); anything else is a bug. */
const NEXT: Record<Phase, readonly Phase[]> = {
  [Phase.Head]: [Phase.Body, Phase.Relaying, Phase.Released],
  [Phase.Idle]: [Phase.Body, Phase.Relaying, Phase.Released],
  [Phase.Body]: [Phase.Relaying, Phase.Released],
  [Phase.Relaying]: [Phase.Idle, Phase.Released],
  [Phase.Released]: [],
};

/** One peer connection on the fast path, one request at a time. */
class PeerConnection implements PoolResponseHandler {
  private phase = Phase.Head;
  private buf: Buffer = EMPTY;
  /** Body bytes still to arrive before the request can be relayed (Body phase). */
  private bodyNeeded = 0;
  /** When the request in the Body phase must be complete (Date.now() ms). */
  private requestDeadline = 0;
  /**
   * The Body phase's timer was armed for the request's deadline, not for the
   * idle bound. A socket timer may fire a millisecond before `Date.now()`
   * reaches the deadline (libuv's loop clock is not the wall clock), so the
   * 408's reason is taken from what the timer was armed for.
   */
  private bodyTimerIsDeadline = false;
  private head: RequestHead | null = null;
  private closeAfter = false;
  private log: ExchangeLog | null = null;
  private upstream: PoolExchange | null = null;
  private spool: ResponseSpool | null = null;
  private status = 0;
  private headSent = false;
  private chunkedOut = false;
  private noBody = false;
  private readonly onSocketData = (chunk: Buffer) => this.received(chunk);
  private readonly onTimeout = () => this.timedOut();
  private readonly onClose = () => this.closed();
  private readonly onSocketEnd = () => this.peerEnded();
  /** The spool's view of the peer: body chunks go out framed as the answer's head said. */
  private readonly sink: SpoolSink;

  constructor(
    private readonly fp: FastPath,
    private readonly socket: Socket,
    private readonly source: SourceInfo,
  ) {
    socket.setTimeout(fp.ctx.limits.headMs);
    socket.on('data', this.onSocketData);
    socket.on('timeout', this.onTimeout);
    socket.on('error', noop);
    socket.on('close', this.onClose);
    socket.on('end', this.onSocketEnd);
    this.sink = {
      write: (chunk: Buffer) => this.writeBody(chunk),
      get writableLength() {
        return socket.writableLength;
      },
      once: (event: 'drain', listener: () => void) => socket.once(event, listener),
      off: (event: 'drain', listener: () => void) => socket.off(event, listener),
    };
  }

  private to(next: Phase): void {
    if (!NEXT[this.phase].includes(next))
      throw new Error(`fast path: illegal phase change ${this.phase} -> ${next}`);
    this.phase = next;
  }

  closeIfIdle(): void {
    if (this.phase === Phase.Head || this.phase === Phase.Idle) this.release();
  }

  private received(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    switch (this.phase) {
      case Phase.Head:
      case Phase.Idle:
        this.next();
        return;
      case Phase.Body:
        if (this.buf.length >= this.bodyNeeded) this.relayWithBody();
        else if (Date.now() >= this.requestDeadline)
          this.tooSlow(`request not complete within ${this.fp.ctx.limits.requestMs} ms`);
        else this.armBodyTimer();
        return;
      case Phase.Relaying:
        if (this.buf.length > MAX_BUFFERED_BYTES) this.socket.pause();
        return;
      default:
    }
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
    this.head = head;
    this.buf = this.buf.subarray(request.headBytes);
    // Still decided per request: a removed peer's open connection is refused on its next request.
    const access = this.fp.ctx.accessList.checkKey(this.source.key);
    this.log = new ExchangeLog(this.fp.ctx, head.method, head.target, this.source.display, access);
    if (!access.allowed) {
      this.log.finish(403);
      this.answerError(403, forbiddenBody(this.source.display));
      return;
    }
    if (length === 0 || this.buf.length >= length) {
      this.bodyNeeded = length;
      this.relayWithBody();
      return;
    }
    this.to(Phase.Body);
    this.bodyNeeded = length;
    this.requestDeadline = Date.now() + this.fp.ctx.limits.requestMs;
    this.armBodyTimer();
  }

  /** Arms the Body phase's timer: the idle bound, or less when the request's deadline is nearer. */
  private armBodyTimer(): void {
    const left = this.requestDeadline - Date.now();
    this.bodyTimerIsDeadline = left <= this.fp.ctx.limits.bodyIdleMs;
    this.socket.setTimeout(Math.max(1, Math.min(this.fp.ctx.limits.bodyIdleMs, left)));
  }

  private relayWithBody(): void {
    const n = this.bodyNeeded;
    let body: Buffer | null = null;
    if (n > 0) {
      body = this.buf.subarray(0, n);
      this.buf = this.buf.subarray(n);
      this.bodyNeeded = 0;
      this.log!.bytesIn = n;
    }
    this.to(Phase.Relaying);
    // The upstream side has its own timeouts (the pool's) and the peer's
    // reading its own (the spool's): no idle bound while relaying.
    this.socket.setTimeout(0);
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
    if (this.phase !== Phase.Relaying) return;
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
    if (this.phase !== Phase.Relaying) return true;
    this.log!.bytesOut += chunk.length;
    if (this.noBody) return true;
    // Most answers fit the socket's buffer: the spool is built only for one that does not.
    if (this.spool === null && this.socket.writableLength + chunk.length < this.fp.ctx.spool.memoryBytes) {
      this.writeBody(chunk);
      return true;
    }
    this.spool ??= new ResponseSpool(this.fp.ctx.spool, this.sink, {
      resume: () => this.upstream?.resume(),
      stalled: () => this.stalled(),
    });
    return this.spool.push(chunk);
  }

  private writeBody(chunk: Buffer): void {
    if (!this.chunkedOut) {
      this.socket.write(chunk);
      return;
    }
    this.socket.cork();
    this.socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    this.socket.write(chunk);
    this.socket.write('\r\n', 'latin1');
    this.socket.uncork();
  }

  onEnd(): void {
    if (this.phase !== Phase.Relaying) return;
    this.upstream = null;
    if (this.spool) this.spool.end(() => this.answered());
    else this.answered();
  }

  /** The whole answer is on its way to the peer. */
  private answered(): void {
    if (this.phase !== Phase.Relaying) return;
    if (this.chunkedOut) this.socket.write('0\r\n\r\n', 'latin1');
    this.log!.finish(this.status);
    this.endExchange();
  }

  /** The peer took no bytes for writeStallMs: it must not hold the answer (or the upstream) longer. */
  private stalled(): void {
    if (this.phase !== Phase.Relaying) return;
    const ms = this.fp.ctx.limits.writeStallMs;
    this.log!.finish(this.status, {
      kind: 'peer',
      error: `response cut: peer took no response bytes for ${ms} ms`,
    });
    this.cut();
  }

  onError(err: Error): void {
    if (this.phase !== Phase.Relaying) return;
    this.upstream = null;
    const log = this.log!;
    const failure = classifyUpstreamError(err, this.fp.ctx.timeouts);
    const error = failure.body.error;
    if (this.headSent) {
      // Too late for an error answer: cut the connection so the peer sees a
      // truncated response instead of a clean end.
      log.finish(this.status, { kind: failure.kind, error: `response cut: ${error}` });
      this.cut();
      return;
    }
    log.finish(failure.status, { kind: failure.kind, error });
    this.answerError(failure.status, failure.body);
  }

  /** The exchange is over: next request, or close. */
  private endExchange(): void {
    this.spool = null;
    this.head = null;
    this.log = null;
    this.upstream = null;
    this.headSent = false;
    this.status = 0;
    if (this.closeAfter || this.fp.closing) {
      this.release();
      return;
    }
    this.to(Phase.Idle);
    this.socket.setTimeout(this.fp.ctx.limits.keepAliveMs);
    if (this.socket.isPaused()) this.socket.resume();
    this.next();
  }

  /** The peer sent too slowly: 408, and the connection is released. */
  private tooSlow(what: string): void {
    this.log?.finish(408);
    this.answerError(408, requestTimeoutBody(what));
  }

  /** An error answer (JSON, the project's shape); the connection is released after it. */
  private answerError(status: number, body: ErrorBody): void {
    this.detach();
    endWithJsonError(this.socket, status, body, this.fp.ctx.limits.lingerMs);
  }

  /** No more requests on this connection: our side ends, the socket is released after a linger. */
  private release(): void {
    this.detach();
    endAndLinger(this.socket, this.fp.ctx.limits.lingerMs);
  }

  /** Ends the connection at once: the peer must see a truncated answer, not a clean end. */
  private cut(): void {
    this.detach();
    this.socket.destroy();
  }

  /** Leaves the socket to endAndLinger (or to its end): no more of our listeners, timers or buffers. */
  private detach(): void {
    if (this.phase === Phase.Released) return;
    this.to(Phase.Released);
    this.upstream?.abort();
    this.upstream = null;
    this.spool?.dispose();
    this.spool = null;
    this.buf = EMPTY;
    this.fp.connections.delete(this);
    this.socket.setTimeout(0);
    this.socket.off('data', this.onSocketData);
    this.socket.off('timeout', this.onTimeout);
    this.socket.off('end', this.onSocketEnd);
  }

  /** The peer closed its sending side: the request in progress is answered, then the connection closes. */
  private peerEnded(): void {
    switch (this.phase) {
      case Phase.Body:
        // The body will never be complete: nothing was relayed.
        this.log?.finish(CLIENT_CLOSED);
        this.release();
        return;
      case Phase.Relaying:
        this.closeAfter = true;
        return;
      default:
        this.release();
    }
  }

  private timedOut(): void {
    const { limits } = this.fp.ctx;
    switch (this.phase) {
      case Phase.Head:
        this.tooSlow(`no complete request head within ${limits.headMs} ms`);
        return;
      case Phase.Body:
        this.tooSlow(
          this.bodyTimerIsDeadline || Date.now() >= this.requestDeadline
            ? `request not complete within ${limits.requestMs} ms`
            : `request body idle for ${limits.bodyIdleMs} ms`,
        );
        return;
      case Phase.Idle:
        // As Node's server does with an idle keep-alive connection.
        this.detach();
        this.socket.destroy();
        return;
      default:
    }
  }

  private closed(): void {
    if (this.phase === Phase.Relaying || this.phase === Phase.Body) this.log?.finish(CLIENT_CLOSED);
    this.detach();
  }

  /** Gives the connection, with its unread bytes, to Node's HTTP server for good. */
  private handOff(): void {
    const socket = this.socket;
    const unread = this.buf;
    this.detach();
    socket.off('close', this.onClose);
    socket.off('error', noop);
    if (unread.length > 0) socket.unshift(unread);
    this.fp.handOff(socket);
  }
}

const noop = () => undefined;
const uncork = (socket: Socket) => socket.uncork();
