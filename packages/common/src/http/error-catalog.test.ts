import fs from 'node:fs';
import path from 'node:path';
import { appError, ERRORS, retryAfterFor } from './error-catalog';

describe('docs/errors.md', () => {
  const doc = fs.readFileSync(path.resolve(__dirname, '../../../../docs/errors.md'), 'utf8');
  const rows = [...doc.matchAll(/^\| `([a-z_.]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);

  it('when compared with the catalog then both list the same codes with the same statuses', () => {
    const catalog = Object.entries(ERRORS).map(([code, entry]) => [code, entry.status]);
    expect([...rows].sort()).toEqual([...catalog].sort());
  });
});

describe('the error catalog', () => {
  it('when an error is built from a code then it carries the catalog status and message', () => {
    const err = appError('redis_unavailable');
    expect(err).toMatchObject({
      code: 'redis_unavailable',
      status: 503,
      message: ERRORS.redis_unavailable.message,
    });
    expect(appError('run_not_found', 'run 7 not found').message).toBe('run 7 not found');
  });

  it('when an answer is a 503 then it gets a Retry-After, other statuses none', () => {
    expect(retryAfterFor('redis_unavailable', 503)).toBe(1);
    expect(retryAfterFor('stop_failed', 503)).toBe(1);
    expect(retryAfterFor('internal', 500)).toBeUndefined();
  });
});
