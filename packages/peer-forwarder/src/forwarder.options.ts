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

/** Bounds on every phase of a peer connection (`forwarder.limits.*`, docs/forwarder.md "Limits"). */
export interface ForwarderLimits {
  /** Connection accepted, or a later request's first byte, until its head is complete (408). */
  headMs: number;
  /** Silence inside a request body (408). */
  bodyIdleMs: number;
  /** Request head begun until the whole request is received (408). */
  requestMs: number;
  /** A peer that takes no response bytes for this long is cut. */
  writeStallMs: number;
  /** Wait for a free upstream connection (503). */
  queueMs: number;
  /** Idle peer connection between requests. */
  keepAliveMs: number;
  /** After a refusal or a connection's last answer, the peer's time to close before it is cut. */
  lingerMs: number;
  /** Open connections per source that is not allowed. */
  connectionsPerStranger: number;
  /** Open connections per allowed source. */
  connectionsPerPeer: number;
  /** Response bytes held in memory per answer before spilling to a temporary file. */
  responseBufferBytes: number;
  /** Cap of that file per answer (0: none); past it the upstream waits for the peer. */
  responseFileBytes: number;
}

/** `forwarder.limits.*` defaults (the config schema's). */
export const DEFAULT_LIMITS: Readonly<ForwarderLimits> = Object.freeze({
  /** Well under Node's 60 s default; a LAN peer sends its head in one packet. */
  headMs: 20_000,
  bodyIdleMs: 30_000,
  /** Node's own default requestTimeout: a 100 MB upload at a few hundred kB/s still fits. */
  requestMs: 300_000,
  writeStallMs: 60_000,
  /** Above connectTimeoutMs, so a request that waits for a new connection hears the connect error first. */
  queueMs: 30_000,
  /** Node's default keepAliveTimeout. */
  keepAliveMs: 5_000,
  lingerMs: 2_000,
  /** A stranger needs one connection to read its 403; a few allow for a retrying client. */
  connectionsPerStranger: 4,
  /** Every job of a peer may hold a few ES and push connections at once. */
  connectionsPerPeer: 128,
  responseBufferBytes: 1024 ** 2,
  /** nginx's proxy_max_temp_file_size is 1 GiB; an Elasticsearch scroll page is far smaller. */
  responseFileBytes: 256 * 1024 ** 2,
});
