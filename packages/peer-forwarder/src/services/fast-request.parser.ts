import { CRLF_CRLF, Http1ParseError, parseRequestHead, type RequestHead } from './http1.parser';

/**
 * The fast path's whole framing decision (routes/fast-path.handler.ts), as a
 * pure function of the bytes it has: serve one request, or hand the
 * connection with those bytes to Node's HTTP server, whose parser (llhttp)
 * then decides. A pure function so that the differential test
 * (test/differential.test.ts) can run it at every split point against llhttp.
 *
 * Serving is allowed only where llhttp would read the same request the same
 * way; anything doubtful is a hand-off, never an answer of its own.
 */
export type FastRequest =
  | {
      kind: 'serve';
      head: RequestHead;
      /** Bytes of the head including its final CRLF CRLF. */
      headBytes: number;
      /** Content-Length of the body (0: none). */
      bodyLength: number;
      /** The peer asked to close the connection after this request. */
      close: boolean;
    }
  | { kind: 'handoff' };

/** Limits of the fast path; beyond them Node's server takes the connection. */
export interface FastRequestLimits {
  /** Largest head (without its final CRLF CRLF) served here. */
  maxHeadBytes: number;
  /** Largest Content-Length served here (larger bodies stream through Node's server). */
  maxBodyBytes: number;
}

/**
 * Methods llhttp accepts and IVIS-core's peers send. llhttp refuses methods
 * it does not know, and lower-case ones, with 400: the fast path must not
 * serve them (found by test/differential.test.ts). CONNECT is not here: it
 * changes what follows the head.
 */
const FAST_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);

const HANDOFF: FastRequest = { kind: 'handoff' };
const CLOSE_TOKEN = /(?:^|[\s,])close(?:$|[\s,])/i;

/** What the fast path does with `buf`, the unread bytes of a connection starting at a request. */
export function readFastRequest(buf: Buffer, limits: FastRequestLimits): FastRequest {
  const end = buf.indexOf(CRLF_CRLF);
  // A head split over reads (or an oversized one): Node's server has the
  // timeouts and limits for slow or large heads.
  if (end === -1 || end > limits.maxHeadBytes) return HANDOFF;
  // llhttp treats HTAB unlike SP in places (it refuses `Content-Length: 3<HTAB>`
  // that a trimming parser reads as 3): a head with any tab is Node's to judge.
  const tab = buf.indexOf(9);
  if (tab !== -1 && tab < end) return HANDOFF;
  let head: RequestHead;
  try {
    head = parseRequestHead(buf.toString('latin1', 0, end));
  } catch (err) {
    if (!(err instanceof Http1ParseError)) throw err;
    return HANDOFF;
  }
  const framing = simpleFraming(head);
  if (!framing || framing.length > limits.maxBodyBytes) return HANDOFF;
  return { kind: 'serve', head, headBytes: end + 4, bodyLength: framing.length, close: framing.close };
}

/**
 * The body length of a request the fast path serves, or null for one it
 * hands to Node: HTTP/1.0, non-origin targets, methods llhttp may refuse
 * and CONNECT, Transfer-Encoding
 * (whatever came before it), Upgrade, Expect, a doubtful or repeated
 * Content-Length, a missing or repeated Host.
 */
function simpleFraming(head: RequestHead): { length: number; close: boolean } | null {
  if (head.minor !== 1 || head.target.charCodeAt(0) !== 47 /* / */ || !FAST_METHODS.has(head.method))
    return null;
  let length = 0;
  let seenLength = false;
  let hasHost = false;
  let close = false;
  const raw = head.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') {
          // Exactly one Host, as Node's server requires of HTTP/1.1 (else 400 there).
          if (hasHost) return null;
          hasHost = true;
        }
        break;
      case 6:
        if (name.toLowerCase() === 'expect') return null;
        break;
      case 7:
        if (name.toLowerCase() === 'upgrade') return null;
        break;
      case 10:
        if (name.toLowerCase() === 'connection' && CLOSE_TOKEN.test(raw[i + 1]!)) close = true;
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') {
          const value = raw[i + 1]!;
          if (seenLength || !/^\d{1,6}$/.test(value)) return null;
          seenLength = true;
          length = Number(value);
        }
        break;
      case 17:
        // Never framed by a Content-Length seen before it: that is request smuggling.
        if (name.toLowerCase() === 'transfer-encoding') return null;
        break;
      default:
    }
  }
  return hasHost ? { length, close } : null;
}
