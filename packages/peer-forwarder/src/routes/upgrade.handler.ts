import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { displayAddress } from '../services/cidr.matcher';
import { classifyUpstreamError } from '../services/upstream-error.service';
import {
  CLIENT_CLOSED,
  endWithJsonError,
  ExchangeLog,
  forbiddenBody,
  type RouteContext,
} from './proxy.handler';

/**
 * Protocol upgrades (WebSocket) go through http-proxy, which relays the
 * switched connection both ways; same access rule and header hygiene as
 * plain requests.
 */
export function createUpgradeHandler(
  ctx: RouteContext,
): (req: IncomingMessage, socket: Socket, head: Buffer) => void {
  // What the upstream answered, per upgrade request: http-proxy relays a
  // refusal (a non-101 answer) as it is and switches only on a 101, and it
  // tells neither to its caller; its upstream request does.
  const answered = new WeakMap<IncomingMessage, { status: number }>();
  ctx.upstream.upgrades.on('proxyReqWs', (proxyReq: ClientRequest, req: IncomingMessage) => {
    const seen = answered.get(req);
    if (!seen) return;
    proxyReq.once('response', (res: IncomingMessage) => (seen.status = res.statusCode ?? 0));
    proxyReq.once('upgrade', () => (seen.status = 101));
  });
  return (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const remote = socket.remoteAddress;
    const source = displayAddress(remote ?? '');
    const access = ctx.accessList.check(remote);
    const log = new ExchangeLog(ctx, req.method ?? '', req.url ?? '', source, access);
    const { lingerMs } = ctx.limits;
    if (!access.allowed) {
      log.finish(403);
      endWithJsonError(socket, 403, forbiddenBody(source), lingerMs);
      return;
    }
    // http-proxy builds the upstream request from req.headers (Node joins
    // repeated ones); underscore spellings are dropped as on the other paths.
    const incomingFor = req.headers['x-forwarded-for'];
    for (const name of Object.keys(req.headers)) {
      const key = name.replace(/_/g, '-');
      if (key === 'x-ivis-cert-serial' || key.startsWith('x-forwarded-')) delete req.headers[name];
    }
    req.headers['x-forwarded-for'] = incomingFor ? `${String(incomingFor)}, ${source}` : source;
    req.headers['x-forwarded-proto'] = 'http';
    const seen = { status: 0 };
    answered.set(req, seen);
    socket.on('close', () => {
      log.bytesIn = socket.bytesRead;
      log.bytesOut = socket.bytesWritten;
      // Nothing answered: the peer (or the upstream, unseen by http-proxy) went away first.
      if (seen.status === 0) log.finish(CLIENT_CLOSED, { kind: 'reset', error: 'no answer to the upgrade' });
      else log.finish(seen.status);
    });
    ctx.upstream.upgrades.ws(req, socket, head, {}, (err: Error) => {
      const failure = classifyUpstreamError(err, ctx.timeouts);
      log.finish(failure.status, { kind: failure.kind, error: failure.body.error });
      if (socket.writable && seen.status === 0)
        endWithJsonError(socket, failure.status, failure.body, lingerMs);
      else socket.destroy();
    });
  };
}
