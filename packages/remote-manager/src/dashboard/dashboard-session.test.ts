import {
  SESSION_COOKIE,
  checkBearer,
  createSessionValue,
  readCookie,
  sessionCookie,
  verifySessionValue,
} from './dashboard-session';

const TOKEN = 'a-development-token-0123456789';
const NOW = 1_800_000_000_000;

describe('dashboard session cookie', () => {
  it('when a session is made with the token then it verifies until it expires, and never holds the token', () => {
    const value = createSessionValue(TOKEN, NOW, 60_000);
    expect(value).not.toContain(TOKEN);
    expect(verifySessionValue(TOKEN, value, NOW)).toBe(true);
    expect(verifySessionValue(TOKEN, value, NOW + 59_999)).toBe(true);
    expect(verifySessionValue(TOKEN, value, NOW + 60_000)).toBe(false);
  });

  it('when the token changes or the value is tampered with then the session is refused', () => {
    const value = createSessionValue(TOKEN, NOW, 60_000);
    expect(verifySessionValue(`${TOKEN}-rotated`, value, NOW)).toBe(false);
    const [exp, mac] = value.split('.') as [string, string];
    // A later expiry with the old MAC, a flipped MAC, and junk.
    expect(verifySessionValue(TOKEN, `${Number(exp) + 1}.${mac}`, NOW)).toBe(false);
    expect(verifySessionValue(TOKEN, `${exp}.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`, NOW)).toBe(
      false,
    );
    for (const junk of ['', '.', 'abc', `${exp}`, `${exp}.`, `${exp}.${mac}.x`, `-1.${mac}`]) {
      expect(verifySessionValue(TOKEN, junk, NOW)).toBe(false);
    }
  });

  it('when an Authorization header is read then only "Bearer <the token>" is ok', () => {
    expect(checkBearer(TOKEN, undefined)).toBe('missing');
    expect(checkBearer(TOKEN, '')).toBe('missing');
    expect(checkBearer(TOKEN, `Basic ${TOKEN}`)).toBe('missing');
    expect(checkBearer(TOKEN, `Bearer ${TOKEN}`)).toBe('ok');
    expect(checkBearer(TOKEN, `bearer ${TOKEN}`)).toBe('ok');
    expect(checkBearer(TOKEN, `Bearer ${TOKEN}x`)).toBe('wrong');
    expect(checkBearer(TOKEN, 'Bearer short')).toBe('wrong');
  });

  it('when a Cookie header is read then the named cookie is found among others', () => {
    expect(readCookie(undefined, SESSION_COOKIE)).toBeUndefined();
    expect(readCookie('a=1; rps_dashboard=12.x; b=2', SESSION_COOKIE)).toBe('12.x');
    expect(readCookie('xrps_dashboard=1', SESSION_COOKIE)).toBeUndefined();
  });

  it('when the cookie is set or cleared then it is HttpOnly, SameSite=Strict and scoped to its path', () => {
    const set = sessionCookie('12.x', { path: '/queues', secure: false, maxAgeMs: 60_000 });
    expect(set).toBe('rps_dashboard=12.x; Path=/queues; Max-Age=60; HttpOnly; SameSite=Strict');
    expect(sessionCookie(null, { path: '/queues', secure: true })).toBe(
      'rps_dashboard=; Path=/queues; Max-Age=0; HttpOnly; SameSite=Strict; Secure',
    );
  });
});
