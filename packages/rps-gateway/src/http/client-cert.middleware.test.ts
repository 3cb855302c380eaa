import type { X509Certificate } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { AppError, type CertificateIdentity } from '@rps/common';
import { recordingLogger } from '@rps/common/testing';
import type { ClientVerdict } from '../services/client-allow-list.service';
import { clientCertGuard } from './client-cert.middleware';

const FINGERPRINT = Array.from({ length: 32 }, (_, i) => (i + 16).toString(16).toUpperCase()).join(':');

function fakeSocket(serialHex: string | null) {
  const certificate = {
    serialNumber: serialHex,
    fingerprint256: FINGERPRINT.toLowerCase(),
    issuer: 'O=IVIS-core\nCN=IVIS-core CA',
    subject: 'CN=IVIS-Executor',
  };
  return {
    getPeerX509Certificate: () =>
      serialHex === null ? undefined : (certificate as unknown as X509Certificate),
  };
}

interface Outcome {
  result: unknown;
  logged: Array<Record<string, unknown>>;
  locals: Record<string, unknown>;
  log: Logger;
}

async function run(guard: ReturnType<typeof clientCertGuard>, socket: object): Promise<Outcome> {
  const { logger: log, lines: logged } = recordingLogger();
  const req = { socket, log } as unknown as Request;
  const res = { locals: {} } as unknown as Response;
  let result: unknown = 'not called';
  const next: NextFunction = (err?: unknown) => {
    result = err ?? 'next';
  };
  try {
    await guard(req, res, next);
  } catch (err) {
    result = err;
  }
  return { result, logged, locals: res.locals, log: req.log };
}

const allowAll = (): ClientVerdict => ({ allowed: true, name: 'ivis-core' });

describe('clientCertGuard', () => {
  it('when the serial is not revoked then the request passes, and the list is read once per connection', async () => {
    const asked: string[] = [];
    const guard = clientCertGuard({
      isRevoked: async (s) => (asked.push(s), false),
      identify: allowAll,
      recheckMs: 60_000,
    });
    const socket = fakeSocket('0A');
    expect((await run(guard, socket)).result).toBe('next');
    expect((await run(guard, socket)).result).toBe('next');
    expect(asked).toEqual(['10']);
  });

  it('when the serial is revoked then it is a 401 naming the decimal serial, on every request', async () => {
    const guard = clientCertGuard({
      isRevoked: async (s) => s === '255',
      identify: allowAll,
      recheckMs: 60_000,
    });
    const socket = fakeSocket('FF');
    for (let i = 0; i < 2; i++) {
      const { result } = await run(guard, socket);
      expect(result).toBeInstanceOf(AppError);
      expect(result).toMatchObject({
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
      identify: allowAll,
      recheckMs: 60_000,
    });
    const socket = fakeSocket('01');
    expect((await run(guard, socket)).result).toMatchObject({ status: 503, code: 'redis_unavailable' });
    down = false;
    expect((await run(guard, socket)).result).toBe('next');
  });

  it('when reading the revocation list fails for another reason than Redis being down then it answers 503 revocation_check_unavailable', async () => {
    const guard = clientCertGuard({
      isRevoked: () =>
        Promise.reject(new Error('WRONGTYPE Operation against a key holding the wrong kind of value')),
      identify: allowAll,
      recheckMs: 60_000,
    });
    expect((await run(guard, fakeSocket('01'))).result).toMatchObject({
      status: 503,
      code: 'revocation_check_unavailable',
    });
  });

  it('when the recheck interval passes then a revocation reaches an open connection', async () => {
    let clock = 0;
    const revoked = new Set<string>();
    const guard = clientCertGuard({
      isRevoked: async (s) => revoked.has(s),
      identify: allowAll,
      recheckMs: 1000,
      now: () => clock,
    });
    const socket = fakeSocket('02');
    expect((await run(guard, socket)).result).toBe('next');
    revoked.add('2');
    clock = 999;
    expect((await run(guard, socket)).result).toBe('next');
    clock = 1000;
    expect((await run(guard, socket)).result).toMatchObject({ status: 401 });
  });

  it('when recheckMs is 0 then every request on a connection asks the revocation list', async () => {
    const revoked = new Set<string>();
    let asked = 0;
    const guard = clientCertGuard({
      isRevoked: async (s) => (asked++, revoked.has(s)),
      identify: allowAll,
      recheckMs: 0,
      now: () => 0,
    });
    const socket = fakeSocket('02');
    expect((await run(guard, socket)).result).toBe('next');
    revoked.add('2');
    expect((await run(guard, socket)).result).toMatchObject({ status: 401 });
    expect(asked).toBe(2);
  });

  it('when the connection has no client certificate then it is a 401', async () => {
    const guard = clientCertGuard({ isRevoked: async () => false, identify: allowAll, recheckMs: 1000 });
    expect((await run(guard, fakeSocket(null))).result).toMatchObject({
      status: 401,
      code: 'client_certificate_required',
    });
  });

  it('when the connection is not TLS at all then it is a 401, not a crash', async () => {
    const guard = clientCertGuard({ isRevoked: async () => false, identify: allowAll, recheckMs: 1000 });
    expect((await run(guard, {})).result).toMatchObject({ status: 401, code: 'client_certificate_required' });
  });

  it('when the allow-list admits the certificate without a name then the log carries its subject', async () => {
    const guard = clientCertGuard({
      isRevoked: async () => false,
      identify: () => ({ allowed: true, name: null }),
      recheckMs: 1000,
    });
    const outcome = await run(guard, fakeSocket('0D'));
    expect(outcome.result).toBe('next');
    expect(outcome.locals.client).toBeNull();
    outcome.log.info('request done');
    expect(outcome.logged.at(-1)).toMatchObject({ client: null, clientSubject: 'CN=IVIS-Executor' });
  });

  it('when the certificate is allowed then the request log and res.locals carry the client name', async () => {
    const seen: CertificateIdentity[] = [];
    const guard = clientCertGuard({
      isRevoked: async () => false,
      identify: (identity) => (seen.push(identity), { allowed: true, name: 'ivis-core' }),
      recheckMs: 1000,
    });
    const outcome = await run(guard, fakeSocket('0B'));
    expect(outcome.result).toBe('next');
    expect(outcome.locals.client).toBe('ivis-core');
    outcome.log.info('request done');
    expect(outcome.logged.at(-1)).toMatchObject({ client: 'ivis-core', msg: 'request done' });
    expect(seen[0]).toEqual({
      fingerprint256: FINGERPRINT,
      serial: '11',
      issuer: 'CN=IVIS-core CA\nO=IVIS-core',
      subject: 'CN=IVIS-Executor',
    });
  });

  it('when the certificate is not an allowed client then it is a 403 on every request and one warn line per connection', async () => {
    let allowed = false;
    const guard = clientCertGuard({
      isRevoked: async () => false,
      identify: () => (allowed ? { allowed: true, name: 'late' } : { allowed: false }),
      recheckMs: 60_000,
    });
    const socket = fakeSocket('0C');
    const first = await run(guard, socket);
    expect(first.result).toMatchObject({
      status: 403,
      code: 'client_not_allowed',
      message: `client certificate ${FINGERPRINT} (CN=IVIS-Executor) is not an allowed client`,
    });
    expect(first.logged).toEqual([
      expect.objectContaining({
        level: 40,
        msg: 'client certificate not allowed',
        client: {
          subject: 'CN=IVIS-Executor',
          serial: '12',
          fingerprint256: FINGERPRINT,
          issuer: 'CN=IVIS-core CA, O=IVIS-core',
        },
      }),
    ]);
    const second = await run(guard, socket);
    expect(second.result).toMatchObject({ status: 403 });
    expect(second.logged).toEqual([]);
    // The allow-list is asked per request: an added client gets in on the same connection.
    allowed = true;
    expect((await run(guard, socket)).result).toBe('next');
  });

  it('when the revocation verdict of a refused connection is renewed then the warn line is still not repeated', async () => {
    const guard = clientCertGuard({
      isRevoked: async () => false,
      identify: () => ({ allowed: false }),
      recheckMs: 0,
      now: () => 0,
    });
    const socket = fakeSocket('0E');
    expect((await run(guard, socket)).logged).toHaveLength(1);
    const again = await run(guard, socket);
    expect(again.result).toMatchObject({ status: 403 });
    expect(again.logged).toEqual([]);
  });
});
