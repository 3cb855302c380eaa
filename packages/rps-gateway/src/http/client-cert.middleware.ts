import type { X509Certificate } from 'node:crypto';
import type { RequestHandler } from 'express';
import { AppError, decimalSerial } from '@rps/common';

/** What the guard reads from the connection; a TLSSocket has it. */
interface PeerCertificateSource {
  getPeerX509Certificate?: () => X509Certificate | undefined;
}

/** What the guard needs. */
export interface ClientCertGuardOptions {
  isRevoked: (decimalSerial: string) => Promise<boolean>;
  /** How long one connection's verdict holds before it is checked again. */
  recheckMs: number;
  now?: () => number;
}

interface Verdict {
  serial: string;
  revoked: boolean;
  checkedAt: number;
}

/**
 * The revocation half of mTLS (the handshake already checked the chain and
 * validity): a client certificate whose serial is on the revoked list gets
 * 401. Checked once per connection, not per request, because keep-alive
 * clients send many requests on one; rechecked after `recheckMs` so a
 * revocation also reaches a connection that never closes. Fails closed: if
 * the list cannot be read the request gets 503, never a free pass.
 */
export function clientCertGuard({
  isRevoked,
  recheckMs,
  now = Date.now,
}: ClientCertGuardOptions): RequestHandler {
  const verdicts = new WeakMap<object, Verdict>();
  return async (req, _res, next) => {
    const socket = req.socket as PeerCertificateSource;
    let verdict = verdicts.get(socket);
    if (verdict === undefined || now() - verdict.checkedAt >= recheckMs) {
      const certificate = socket.getPeerX509Certificate?.();
      if (!certificate) {
        throw new AppError('client_certificate_required', 401, 'a client certificate is required');
      }
      const serial = decimalSerial(certificate);
      let revoked: boolean;
      try {
        revoked = await isRevoked(serial);
      } catch {
        throw new AppError(
          'revocation_check_unavailable',
          503,
          'the client certificate cannot be checked against the revocation list now',
        );
      }
      verdict = { serial, revoked, checkedAt: now() };
      verdicts.set(socket, verdict);
    }
    if (verdict.revoked) {
      throw new AppError('certificate_revoked', 401, `client certificate ${verdict.serial} is revoked`);
    }
    next();
  };
}
