import { createHmac, timingSafeEqual } from 'node:crypto';

// The dashboard's session cookie: bull-board's own page calls its API with
// plain relative fetches that cannot carry the bearer header, so the dashboard
// page trades the token (sent once as a bearer header) for this cookie, scoped
// to bull-board's path. The cookie holds an expiry and an HMAC keyed by the
// token, never the token itself; changing manager.token invalidates every session.

/** Name of the cookie (HttpOnly, SameSite=Strict, Path = bull-board's mount). */
export const SESSION_COOKIE = 'rps_dashboard';

/** How long a session lasts (ms): a working day; the page signs in again after it. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

const CONTEXT = 'rps-dashboard-session:v1:';

function mac(token: string, expiresAtMs: number): string {
  return createHmac('sha256', token).update(`${CONTEXT}${expiresAtMs}`).digest('base64url');
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The cookie value of a session made at `nowMs`: `<expiresAtMs>.<hmac>`. */
export function createSessionValue(token: string, nowMs: number, ttlMs = SESSION_TTL_MS): string {
  const expiresAtMs = nowMs + ttlMs;
  return `${expiresAtMs}.${mac(token, expiresAtMs)}`;
}

/** Whether `value` is a session made with `token` that has not expired at `nowMs`. */
export function verifySessionValue(token: string, value: string, nowMs: number): boolean {
  const match = /^(\d{1,16})\.([A-Za-z0-9_-]{43})$/.exec(value);
  if (!match) return false;
  const expiresAtMs = Number(match[1]);
  if (!(expiresAtMs > nowMs)) return false;
  return sameText(mac(token, expiresAtMs), match[2]!);
}

/** What an `Authorization` header says about `token`: absent (or not a bearer), wrong, or right. */
export function checkBearer(token: string, header: string | undefined): 'missing' | 'wrong' | 'ok' {
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
  if (!match) return 'missing';
  return sameText(match[1]!, token) ? 'ok' : 'wrong';
}

/** The value of cookie `name` in a `Cookie` header, or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** A `Set-Cookie` header for the session (`value` null clears it). */
export function sessionCookie(
  value: string | null,
  opts: { path: string; secure: boolean; maxAgeMs?: number },
): string {
  const maxAgeS = value === null ? 0 : Math.floor((opts.maxAgeMs ?? SESSION_TTL_MS) / 1000);
  const parts = [
    `${SESSION_COOKIE}=${value ?? ''}`,
    `Path=${opts.path}`,
    `Max-Age=${maxAgeS}`,
    'HttpOnly',
    'SameSite=Strict',
  ];
  if (opts.secure) parts.push('Secure');
  return parts.join('; ');
}
