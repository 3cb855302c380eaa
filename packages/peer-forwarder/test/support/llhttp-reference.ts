import http from 'node:http';
import type { Socket } from 'node:net';
import { closeServer, listen } from '@rps/common';
import { testLogger, waitFor } from '@rps/common/testing';
import { exchange, readAnswers, ReadTracker } from './wire-client';

/** One request as a server read it: what an upstream must receive, byte for byte. */
export interface ParsedRequest {
  method: string;
  url: string;
  /** `1.0` or `1.1`. */
  version: string;
  /** Flat `[name, value, ...]` as read (llhttp trims the values). */
  rawHeaders: string[];
  /** The body, decoded (chunked framing removed), one character per byte. */
  body: string;
}

/** What llhttp (a plain Node HTTP server) made of one connection's bytes. */
export interface ReferenceOutcome {
  /** Requests whose body was complete, in order. */
  requests: ParsedRequest[];
  /**
   * Requests Node's server parsed and handed to its request handler after it
   * had decided to close (after its own 400 for a missing Host): no answer
   * is sent, and how many there are depends on how the bytes were cut.
   */
  late: ParsedRequest[];
  /** llhttp's error code when it refused the bytes (the server answered 400), else null. */
  error: string | null;
  /** Statuses the client got, in order. */
  statuses: number[];
}

/**
 * The reference: Node's own HTTP server, built as the forwarder builds its
 * route servers (`requestTimeout: 0`, the same `clientError` answer), that
 * records every complete request and answers each with 200. Fed real bytes
 * on real connections.
 */
export class LlhttpReference {
  private readonly tracker = new ReadTracker();
  private readonly records = new Map<
    number,
    { requests: ParsedRequest[]; late: ParsedRequest[]; error: string | null; open: number }
  >();

  private constructor(
    private readonly server: http.Server,
    readonly port: number,
  ) {}

  static async start(): Promise<LlhttpReference> {
    const server = http.createServer({ requestTimeout: 0 });
    const { port } = await listen(server, { host: '127.0.0.1', port: 0 }, testLogger());
    const ref = new LlhttpReference(server, port);
    server.on('connection', ref.tracker.onConnection);
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => ref.onRequest(req, res));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      const record = ref.records.get(socket.remotePort ?? -1);
      if (record && err.code !== 'ECONNRESET') record.error = err.code ?? err.message;
      // As the forwarder's route servers answer (app.ts).
      if (err.code !== 'ECONNRESET' && socket.writable)
        socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      else socket.destroy();
    });
    return ref;
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const record = this.records.get(req.socket.remotePort ?? -1);
    if (!record) throw new Error('request on an unknown connection');
    // Recorded in arrival order: the slot is taken now, filled when the body is complete.
    // Node's server parses on after it decided to close (its own 400 for a
    // missing Host, a closing request): what it reads then depends on how the
    // bytes were cut, and no answer is sent for it. Not a request it accepted.
    // (`_httpMessage._last`: the answer in progress on the socket closes it; Node internals, test only.)
    const inProgress = (req.socket as unknown as { _httpMessage?: { _last?: boolean } })._httpMessage;
    const late = req.socket.writableEnded || req.socket.destroyed || inProgress?._last === true;
    const list = late ? record.late : record.requests;
    const slot = list.length;
    list.push(null as unknown as ParsedRequest);
    record.open++;
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('error', () => undefined);
    req.on('close', () => {
      if (!req.complete) record.open--;
    });
    req.on('end', () => {
      record.open--;
      list[slot] = {
        method: req.method ?? '',
        url: req.url ?? '',
        version: req.httpVersion,
        rawHeaders: req.rawHeaders,
        body,
      };
      res.setHeader('content-length', '2');
      res.end('ok');
    });
  }

  /** Sends `stream` cut at `cuts` on a new connection and reports what llhttp made of it. */
  async run(stream: Buffer, cuts: readonly number[] = []): Promise<ReferenceOutcome> {
    const slot = {
      requests: [] as ParsedRequest[],
      late: [] as ParsedRequest[],
      error: null as string | null,
      open: 0,
    };
    const raw = await exchange(this.port, stream, cuts, this.tracker, '127.0.0.1', (clientPort) =>
      this.records.set(clientPort, slot),
    );
    // The server closed after its last answer; its last 'end' or 'close' events may still be queued.
    await waitFor('the reference to finish its requests', () => slot.open <= 0, {
      timeoutMs: 2000,
      intervalMs: 5,
    });
    // A request cut short is not complete.
    const requests = slot.requests.filter((r) => r !== null);
    const methods = requests.map((r) => r.method);
    const late = slot.late.filter((r) => r !== null);
    return { requests, late, error: slot.error, statuses: readAnswers(raw, methods).statuses };
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await closeServer(this.server);
  }
}
