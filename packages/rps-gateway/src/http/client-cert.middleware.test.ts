import type { X509Certificate } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { AppError } from '@rps/common';
import { clientCertGuard } from './client-cert.middleware';

function fakeSocket(serialHex: string | null) {
  return {
    getPeerX509Certificate: () =>
      serialHex === null ? undefined : ({ serialNumber: serialHex } as unknown as X509Certificate),
  };
}

async function run(guard: ReturnType<typeof clientCertGuard>, socket: object): Promise<unknown> {
  let passed: unknown = 'not called';
  const next: NextFunction = (err?: unknown) => {
    passed = err ?? 'next';
  };
  try {
    await guard({ socket } as unknown as Request, {} as Response, next);
  } catch (err) {
    return err;
  }
  return passed;
}

describe('clientCertGuard', () => {
  it('when the serial is not revoked then the request passes, and the list is read once per connection', async () => {
    const asked: string[] = [];
    const guard = clientCertGuard({ isRevoked: async (s) => (asked.push(s), false), recheckMs: 60_000 });
    const socket = fakeSocket('0A');
    expect(await run(guard, socket)).toBe('next');
    expect(await run(guard, socket)).toBe('next');
    expect(asked).toEqual(['10']);
  });

  it('when the serial is revoked then it is a 401 naming the decimal serial, on every request', async () => {
    const guard = clientCertGuard({ isRevoked: async (s) => s === '255', recheckMs: 60_000 });
    const socket = fakeSocket('FF');
    for (let i = 0; i < 2; i++) {
      const err = await run(guard, socket);
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({
        status: 401,
        code: 'certificate_revoked',
        message: expect.stringContaining('255'),
      });
    }
  });

  it('when the revocation list cannot be read then it fails closed with 503 and checks again next time', async () => {
    let down = true;
    const guard = clientCertGuard({
      isRevoked: async () => {
        if (down) throw new Error('Connection is closed');
        return false;
      },
      recheckMs: 60_000,
    });
    const socket = fakeSocket('01');
    expect(await run(guard, socket)).toMatchObject({ status: 503, code: 'revocation_check_unavailable' });
    down = false;
    expect(await run(guard, socket)).toBe('next');
  });

  it('when the recheck interval passes then a revocation reaches an open connection', async () => {
    let clock = 0;
    const revoked = new Set<string>();
    const guard = clientCertGuard({
      isRevoked: async (s) => revoked.has(s),
      recheckMs: 1000,
      now: () => clock,
    });
    const socket = fakeSocket('02');
    expect(await run(guard, socket)).toBe('next');
    revoked.add('2');
    clock = 999;
    expect(await run(guard, socket)).toBe('next');
    clock = 1000;
    expect(await run(guard, socket)).toMatchObject({ status: 401 });
  });

  it('when the connection has no client certificate then it is a 401', async () => {
    const guard = clientCertGuard({ isRevoked: async () => false, recheckMs: 1000 });
    expect(await run(guard, fakeSocket(null))).toMatchObject({
      status: 401,
      code: 'client_certificate_required',
    });
  });
});
