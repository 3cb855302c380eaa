import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { displayAddress } from '../services/cidr.matcher';
import { classifyUpstreamError } from '../services/upstream-error.service';
import { endWithJsonError, ExchangeLog, forbiddenBody, type RouteContext } from './proxy.handler';

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
      endWithJsonError(socket, 403, forbiddenBody(source));
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
      if (socket.writable) endWithJsonError(socket, failure.status, failure.body);
      else socket.destroy();
    });
  };
}
