import https from 'node:https';
import type { TlsMaterial } from '@rps/common';
import httpProxy from 'http-proxy';
import { UpstreamPool, type PoolLimits } from './upstream-pool.service';

/** Upstream connection tuning (see forwarder.options.ts for defaults and why). */
export interface UpstreamTuning {
  /** Most keep-alive connections to one upstream. */
  connections: number;
  /** Close an idle pooled connection after this long (below the upstream's own keep-alive timeout). */
  keepAliveTimeoutMs: number;
  /** TCP connect plus TLS handshake. */
  connectTimeoutMs: number;
  /** Request sent until response headers arrive; 504 when exceeded. */
  headersTimeoutMs: number;
  /** Longest silence between two response body chunks. */
  bodyTimeoutMs: number;
  /** Trust the system roots (Node's bundle) instead of `forwarder.tls.ca`, for a publicly certified IVIS-core. */
  useSystemRoots: boolean;
}

const CLOSE_GRACE_MS = 5_000;

/** One route's upstream: a keep-alive pool for requests and a proxy for upgrades. */
export interface Upstream {
  readonly url: URL;
  /** Path prefix of the upstream URL without a trailing slash ('' for none). */
  readonly basePath: string;
  readonly pool: UpstreamPool;
  /** http-proxy serves protocol upgrades, which the request pool does not relay. */
  readonly upgrades: httpProxy;
  readonly upgradeAgent: https.Agent;
  close(): Promise<void>;
}

/**
 * Builds the TLS client side towards IVIS-core: the pool's client certificate,
 * verification against the configured CA (or the system roots) and the host
 * name check. Requests go through the forwarder's own pool, chosen by
 * measurement (docs/forwarder.md): http-proxy's web path over an https.Agent
 * reached about half of Apache's throughput, undici's Pool about 0.8x. Both
 * the pool and http-proxy sit on Node's TLS client, which answers Apache's
 * TLS 1.2 renegotiation for the client certificate (test/renegotiation.test.ts).
 */
export function createUpstream(
  upstream: string,
  tls: TlsMaterial,
  tuning: UpstreamTuning,
  /** The pool's bounds that come from `forwarder.limits` (queueMs, bodyIdleMs). */
  waits: Pick<PoolLimits, 'queueTimeoutMs' | 'uploadIdleMs'>,
  onConnectionError?: (err: Error) => void,
): Upstream {
  const url = new URL(upstream);
  const secure = {
    cert: tls.cert,
    key: tls.key,
    ...(tuning.useSystemRoots ? {} : { ca: tls.ca }),
    rejectUnauthorized: true,
  };
  const pool = new UpstreamPool(url, secure, { ...tuning, ...waits }, onConnectionError);
  const upgradeAgent = new https.Agent({ ...secure, keepAlive: false });
  const upgrades = httpProxy.createProxyServer({
    target: upstream,
    agent: upgradeAgent,
    secure: true,
    changeOrigin: true,
    xfwd: false,
    ws: true,
    proxyTimeout: tuning.headersTimeoutMs,
  });
  return {
    url,
    basePath: url.pathname.replace(/\/+$/, ''),
    pool,
    upgrades,
    upgradeAgent,
    close: async () => {
      upgrades.close();
      upgradeAgent.destroy();
      // Listeners are closed first, so nothing should be in flight; a stuck
      // upstream must not hold the shutdown.
      await pool.close(CLOSE_GRACE_MS);
    },
  };
}
