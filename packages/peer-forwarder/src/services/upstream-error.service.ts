import type { ErrorBody } from '@rps/common';

/** What went wrong with the upstream, as counted in metrics. */
export type UpstreamErrorKind =
  'timeout' | 'connect' | 'tls' | 'reset' | 'protocol' | 'peer' | 'shutdown' | 'queue';

/** How an upstream failure is answered and counted. */
export interface UpstreamFailure {
  status: 408 | 502 | 503 | 504;
  kind: UpstreamErrorKind;
  body: ErrorBody;
}

// The upstream pool's own codes (upstream-pool.service.ts); socket and TLS errors keep Node's.
const TIMEOUT_CODES = new Set([
  'UPSTREAM_CONNECT_TIMEOUT',
  'UPSTREAM_HEADERS_TIMEOUT',
  'UPSTREAM_BODY_TIMEOUT',
]);
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
]);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UPSTREAM_CLOSED']);
// OpenSSL verification results (CERT_HAS_EXPIRED, SELF_SIGNED_CERT_IN_CHAIN,
// UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...) and Node's TLS/SSL error families.
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|EPROTO$)|CERT|ISSUER|SIGNATURE|HOSTNAME/;

interface CodedError {
  code?: unknown;
  message?: unknown;
  cause?: unknown;
}

function codeOf(err: unknown): string {
  const e = err as CodedError | null;
  if (typeof e?.code === 'string') {
    // A closed connection may carry the socket's own error (TLS alert) as its cause.
    if (e.code === 'UPSTREAM_CLOSED' && e.cause) {
      const inner = codeOf(e.cause);
      if (inner) return inner;
    }
    return e.code;
  }
  return e?.cause ? codeOf(e.cause) : '';
}

function messageOf(err: unknown): string {
  const e = err as CodedError | null;
  return typeof e?.message === 'string' && e.message ? e.message : String(err);
}

/**
 * Maps an upstream failure before response headers to the answer: 504 when
 * the upstream was too slow (connect or headers timeout), 502 naming the cause
 * otherwise (refused, unresolvable, TLS verification or handshake, reset).
 */
export function classifyUpstreamError(
  err: unknown,
  timeouts: { connectMs: number; headersMs: number },
): UpstreamFailure {
  const code = codeOf(err);
  // Not the upstream's doing: the peer stalled its own upload, or we are stopping.
  if (code === 'UPSTREAM_UPLOAD_STALLED') return failure(408, 'peer', 'peer_timeout', messageOf(err));
  if (code === 'UPSTREAM_POOL_CLOSED') return failure(503, 'shutdown', 'shutting_down', messageOf(err));
  // Every upstream connection stayed busy for forwarder.limits.queueMs.
  if (code === 'UPSTREAM_QUEUE_TIMEOUT') return failure(503, 'queue', 'upstream_busy', messageOf(err));
  const detail = `${messageOf(err)}${code ? ` (${code})` : ''}`;
  if (TIMEOUT_CODES.has(code)) {
    const what =
      code === 'UPSTREAM_CONNECT_TIMEOUT'
        ? `upstream did not accept a connection within ${timeouts.connectMs} ms`
        : code === 'UPSTREAM_HEADERS_TIMEOUT'
          ? `upstream did not answer within ${timeouts.headersMs} ms`
          : `upstream stalled: ${messageOf(err)}`;
    return failure(504, 'timeout', 'upstream_timeout', what);
  }
  if (CONNECT_CODES.has(code)) {
    return failure(502, 'connect', 'upstream_unreachable', `cannot connect to upstream: ${detail}`);
  }
  if (TLS_CODE.test(code)) {
    return failure(502, 'tls', 'upstream_tls', `TLS with upstream failed: ${detail}`);
  }
  if (RESET_CODES.has(code)) {
    return failure(502, 'reset', 'upstream_reset', `upstream closed the connection: ${detail}`);
  }
  return failure(502, 'protocol', 'upstream_error', `upstream request failed: ${detail}`);
}

function failure(
  status: UpstreamFailure['status'],
  kind: UpstreamErrorKind,
  code: string,
  error: string,
): UpstreamFailure {
  return { status, kind, body: { error, code, details: [] } };
}
