/**
 * Header hygiene between a peer and IVIS-core. Works on Node's and undici's
 * flat raw header lists (`[name, value, name, value, ...]`) to keep the
 * original spelling and order and to avoid building objects per request.
 */

/** RFC 9110 7.6.1 hop-by-hop headers, plus the old `proxy-connection` and `keep-alive`. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Never forwarded from a peer: IVIS-core's Apache adds `x-ivis-cert-serial`
 * after verifying the client certificate and IVIS-core trusts it as the
 * caller's identity, so a peer-supplied copy would be spoofing. `expect` is
 * answered by this listener itself; `host` becomes the upstream's;
 * `content-length` is written by the upstream client from the body it sends
 * (framing is never taken from the peer's head); the forwarding headers are
 * rebuilt below.
 */
const DROP_FROM_PEER = new Set([
  ...HOP_BY_HOP,
  'content-length',
  'x-ivis-cert-serial',
  'expect',
  'host',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
]);

type Raw = ReadonlyArray<string | Buffer>;
const text = (v: string | Buffer | undefined): string =>
  v === undefined ? '' : typeof v === 'string' ? v : v.toString('latin1');

/** Header names a `Connection` header declares hop-by-hop (RFC 9110 7.6.1). */
function connectionTokens(raw: Raw): Set<string> | undefined {
  let tokens: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (text(raw[i]).toLowerCase() !== 'connection') continue;
    for (const token of text(raw[i + 1]).split(',')) {
      const name = token.trim().toLowerCase();
      if (name) (tokens ??= new Set()).add(name);
    }
  }
  return tokens;
}

/** What the peer's request said about itself, for the forwarding headers. */
export interface ClientInfo {
  /** The source address as shown to IVIS-core (IPv4-mapped form already unwrapped). */
  address: string;
  /** The scheme the peer used towards us. */
  proto: 'http' | 'https';
}

/**
 * Headers for the upstream request: drops hop-by-hop and spoofable headers,
 * appends the source to `X-Forwarded-For` (as Apache's mod_proxy did), sets
 * `X-Forwarded-Proto` and keeps the peer's `Host` as `X-Forwarded-Host`. No
 * `Host`, `Content-Length` or `Transfer-Encoding` is emitted: the upstream
 * client writes those.
 */
export function upstreamRequestHeaders(raw: readonly string[], client: ClientInfo): string[] {
  const declared = connectionTokens(raw);
  const out: string[] = [];
  let forwardedFor: string | undefined;
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] ?? '';
    const value = raw[i + 1] ?? '';
    const lower = name.toLowerCase();
    if (lower === 'x-forwarded-for') forwardedFor = forwardedFor ? `${forwardedFor}, ${value}` : value;
    else if (lower === 'host') host = value;
    // Servers that map `_` to `-` (CGI-style environments) would read
    // `x_ivis_cert_serial` as the identity header: underscore spellings of
    // the dropped names go too.
    const key = lower.includes('_') ? lower.replace(/_/g, '-') : lower;
    if (DROP_FROM_PEER.has(key) || declared?.has(lower)) continue;
    out.push(name, value);
  }
  out.push('x-forwarded-for', forwardedFor ? `${forwardedFor}, ${client.address}` : client.address);
  out.push('x-forwarded-proto', client.proto);
  if (host) out.push('x-forwarded-host', host);
  return out;
}

/** Headers for the peer's response: the upstream's, minus hop-by-hop ones (Node frames the body itself). */
export function downstreamResponseHeaders(raw: Raw): string[] {
  // One pass per response (this runs for every relayed answer); names a
  // `Connection` header declares are removed afterwards, which only costs a
  // second pass when they are not hop-by-hop anyway (`keep-alive`, `close`).
  const out: string[] = [];
  let declared: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = text(raw[i]);
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') {
        for (const token of text(raw[i + 1]).split(',')) {
          const declaredName = token.trim().toLowerCase();
          if (declaredName && declaredName !== 'close' && !HOP_BY_HOP.has(declaredName))
            (declared ??= new Set()).add(declaredName);
        }
      }
      continue;
    }
    out.push(name, text(raw[i + 1]));
  }
  if (!declared) return out;
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) {
    if (!declared.has(out[i]!.toLowerCase())) kept.push(out[i]!, out[i + 1]!);
  }
  return kept;
}

/**
 * The request path as logged: no query string (tokens and search terms live
 * there), and long hex path segments masked, because IVIS's sandbox puts the
 * job's access token in the first segment (`/<token>/rest/files/...`).
 */
export function loggablePath(url: string): string {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  return path.replace(/(?<=\/)[0-9a-fA-F]{32,}(?=\/|$)/g, '[token]');
}
