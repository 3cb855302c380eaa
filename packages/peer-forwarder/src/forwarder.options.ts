import type { UpstreamTuning } from './services/upstream.service';

/**
 * Defaults for code that builds the service without a config file (tests,
 * benchmarks); main.ts passes the `forwarder.upstream.*`, `forwarder.tls.useSystemRoots`
 * and `forwarder.peerRefreshMs` config keys, whose schema defaults match.
 */
export const DEFAULT_UPSTREAM_TUNING: Readonly<UpstreamTuning> = Object.freeze({
  /** `forwarder.upstream.connections`: enough for every peer's pushes plus ES traffic, bounded. */
  connections: 64,
  /** `forwarder.upstream.keepAliveTimeoutMs`: under Apache's default KeepAliveTimeout (5 s), so we close first. */
  keepAliveTimeoutMs: 4_000,
  /** `forwarder.upstream.connectTimeoutMs`. */
  connectTimeoutMs: 10_000,
  /** `forwarder.upstream.headersTimeoutMs`: IVIS-core answers a final status push only after its DELETE to the pool. */
  headersTimeoutMs: 120_000,
  /** `forwarder.upstream.bodyTimeoutMs`: idle time between body chunks (long Elasticsearch scrolls). */
  bodyTimeoutMs: 300_000,
  /** `forwarder.tls.useSystemRoots` (the original's `oci.ivisSSLCertVerifiableViaRootCAs`). */
  useSystemRoots: false,
});

/** `forwarder.peerRefreshMs`: full re-read of the peer registry; events cover the fast path. */
export const DEFAULT_PEER_REFRESH_MS = 5_000;
