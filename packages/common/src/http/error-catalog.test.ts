import fs from 'node:fs';
import path from 'node:path';
import { AppError } from './app-error';
import { appError, ERRORS } from './error-catalog';

describe('the error catalog', () => {
  const doc = fs.readFileSync(path.resolve(__dirname, '../../../../docs/errors.md'), 'utf8');
  const rows = [...doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => `${m[1]} ${m[2]}`);

  it('when compared with docs/errors.md then both list the same codes with the same statuses', () => {
    const entries = Object.values(ERRORS).map((e) => `${e.code} ${e.status}`);
    expect([...rows].sort()).toEqual(entries.sort());
  });

  it('when two entries are compared then no code is used twice', () => {
    const codes = Object.values(ERRORS).map((e) => e.code);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('when an entry is thrown then it is an AppError with its code, status and default or given message', () => {
    const err = appError(ERRORS.clientNotAllowed);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({
      code: 'client_not_allowed',
      status: 403,
      message: ERRORS.clientNotAllowed.message,
    });
    expect(appError(ERRORS.certificateRevoked, 'client certificate 5 is revoked').message).toContain('5');
  });
});
