import net from 'node:net';
import { Http1ParseError, ResponseParser } from '../../src/services/http1.parser';

/**
 * A client that writes exact bytes on one connection, cut at given offsets,
 * each piece only after the server has read the one before (so every cut is
 * a separate read on the server side, never merged by the kernel), and
 * collects the raw answer until the server closes.
 */

/** Server-side view of accepted connections, by the client's port: how many bytes each has read. */
export class ReadTracker {
  private readonly sockets = new Map<number, net.Socket>();

  /** Call from the server's 'connection' event (any listener order). */
  readonly onConnection = (socket: net.Socket): void => {
    if (socket.remotePort !== undefined) this.sockets.set(socket.remotePort, socket);
    socket.once('close', () => {
      if (socket.remotePort !== undefined) this.sockets.delete(socket.remotePort);
    });
  };

  socket(clientPort: number): net.Socket | undefined {
    return this.sockets.get(clientPort);
  }
}

/** What the client got back: the raw bytes and the statuses parsed from them. */
export interface WireAnswer {
  raw: Buffer;
  statuses: number[];
  /** Bytes that could not be read as an answer (a broken or cut answer). */
  unparsed: boolean;
}

// A server that closes after an error may leave some of our pieces unread: waiting for them is pointless.
const PIECE_READ_MS = 2000;
// Every stream ends in a `Connection: close` request (or an error answer); the server then closes.
const CLOSE_MS = 10_000;

/** Sends `stream` cut at `cuts` (ascending offsets inside it) and returns the answer once the server closed. */
export async function exchange(
  port: number,
  stream: Buffer,
  cuts: readonly number[],
  tracker: ReadTracker,
  localAddress = '127.0.0.1',
  /** Called with the client's port once connected, before the first byte is sent. */
  onConnected: (clientPort: number) => void = () => undefined,
): Promise<Buffer> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  socket.setNoDelay(true);
  const chunks: Buffer[] = [];
  let ended = false;
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => {
    socket.on('end', () => {
      ended = true;
      resolve();
    });
    socket.on('close', () => {
      ended = true;
      resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const clientPort = socket.localPort!;
  onConnected(clientPort);
  const offsets = [...cuts, stream.length];
  let from = 0;
  for (const to of offsets) {
    if (ended) break;
    socket.write(stream.subarray(from, to));
    from = to;
    if (to === stream.length) break;
    await waitUntilRead(tracker, clientPort, to, () => ended);
  }
  await Promise.race([
    closed,
    new Promise<void>((_, reject) =>
      setTimeout(() => reject(new Error(`no close within ${CLOSE_MS} ms`)), CLOSE_MS).unref(),
    ),
  ]);
  socket.destroy();
  return Buffer.concat(chunks);
}

async function waitUntilRead(
  tracker: ReadTracker,
  clientPort: number,
  bytes: number,
  gone: () => boolean,
): Promise<void> {
  const deadline = Date.now() + PIECE_READ_MS;
  for (;;) {
    const server = tracker.socket(clientPort);
    if (gone() || (server && (server.bytesRead >= bytes || server.destroyed)) || Date.now() > deadline)
      return;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * The statuses in an answer stream, read with the project's strict response
 * parser; `methods` are the requests' methods in order (HEAD answers have no
 * body). Informational answers (100 Continue) are skipped.
 */
export function readAnswers(raw: Buffer, methods: readonly string[]): WireAnswer {
  const statuses: number[] = [];
  let index = 0;
  const parser = new ResponseParser({
    onHead: (head) => statuses.push(head.statusCode),
    onBody: () => undefined,
    onComplete: () => undefined,
  });
  let rest = raw;
  try {
    while (rest.length > 0) {
      parser.reset(methods[index++] ?? 'GET');
      parser.execute(rest);
      if (!parser.complete) {
        parser.end();
        break;
      }
      rest = rest.subarray(rest.length - parser.extraBytes);
    }
  } catch (err) {
    if (!(err instanceof Http1ParseError)) throw err;
    return { raw, statuses, unparsed: true };
  }
  return { raw, statuses, unparsed: false };
}
