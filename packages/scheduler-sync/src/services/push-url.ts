import { isIPv6 } from 'node:net';

/** Where the scheduler's push worker sends, and why. */
export interface PushUrl {
  url: string | null;
  source: 'scheduler.trustedUrlBase' | 'forwarder.routes.trusted' | 'none';
}

/**
 * The trusted URL the scheduler delivers its pushes to: `scheduler.trustedUrlBase`
 * when set, else the forwarder's trusted route of the same config file, as
 * seen from this host (a wildcard listen address becomes loopback, which the
 * forwarder admits by default: `forwarder.allowLoopback`). None without either.
 */
export function resolvePushUrl(
  trustedUrlBase: string | null,
  trustedRoute: { listen: { host: string; port: number } } | undefined,
): PushUrl {
  if (trustedUrlBase) return { url: trustedUrlBase, source: 'scheduler.trustedUrlBase' };
  if (!trustedRoute) return { url: null, source: 'none' };
  const { host, port } = trustedRoute.listen;
  const local = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const shown = isIPv6(local) ? `[${local}]` : local;
  return { url: `http://${shown}:${port}`, source: 'forwarder.routes.trusted' };
}
