import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorBody } from '@rps/common';
import { displayAddress } from '../services/cidr.matcher';
import { classifyUpstreamError } from '../services/upstream-error.service';
import { ExchangeLog, forbiddenBody, type RouteContext } from './proxy.handler';

/** Answers an upgrade request with a JSON error on the raw socket (no ServerResponse exists for upgrades). */
function rejectUpgrade(socket: Socket, status: number, body: ErrorBody): void {
  const payload = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(payload)}\r\n` +
      'connection: close\r\n\r\n' +
      payload,
  );
}

/**
 * Protocol upgrades (WebSocket) go through http-proxy, which relays the
 * switched connection both ways; same access rule and header hygiene as
 * plain requests.
 */
export function createUpgradeHandler(
  ctx: RouteContext,
): (req: IncomingMessage, socket: Socket, head: Buffer) => void {
  return (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const remote = socket.remoteAddress;
    const source = displayAddress(remote ?? '');
    const access = ctx.accessList.check(remote);
    const log = new ExchangeLog(ctx, req.method ?? '', req.url ?? '', source, access);
    if (!access.allowed) {
      log.finish(403);
      rejectUpgrade(socket, 403, forbiddenBody(source));
      return;
    }
    // http-proxy builds the upstream request from req.headers.
    const incomingFor = req.headers['x-forwarded-for'];
    for (const name of Object.keys(req.headers)) {
      if (name === 'x-ivis-cert-serial' || name.startsWith('x-forwarded-')) delete req.headers[name];
    }
    req.headers['x-forwarded-for'] = incomingFor ? `${String(incomingFor)}, ${source}` : source;
    req.headers['x-forwarded-proto'] = 'http';
    socket.on('close', () => {
      log.bytesIn = socket.bytesRead;
      log.bytesOut = socket.bytesWritten;
      log.finish(101);
    });
    ctx.upstream.upgrades.ws(req, socket, head, {}, (err: Error) => {
      const failure = classifyUpstreamError(err, ctx.timeouts);
      log.finish(failure.status, { kind: failure.kind, error: failure.body.error });
      if (socket.writable) rejectUpgrade(socket, failure.status, failure.body);
      else socket.destroy();
    });
  };
}
