import { X509Certificate } from 'node:crypto';
import { hexToDecimal, normalizeHexSerial } from './certificate-info';

/** Why {@link verifyClientCertificate} refused a certificate. */
export type ClientCertificateRefusal =
  'not_issued_by_ca' | 'not_yet_valid' | 'expired' | 'no_client_auth' | 'revoked';

/** The verdict: the decimal serial either way, a reason when refused. */
export type ClientCertificateVerdict =
  | { ok: true; decimalSerial: string; subject: string }
  | { ok: false; decimalSerial: string; reason: ClientCertificateRefusal };

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/**
 * Checks a client certificate the way the gateway does, without a CRL, for
 * the manager's own client-certificate auth: signed by `ca`, valid now, usable
 * for clientAuth (when it names an extended key usage at all), and its
 * decimal serial not in `revoked` (the set `keys.revokedSerials()` read by
 * the caller, per request). The TLS handshake already checked the chain; this
 * repeats it so the function is safe on its own.
 */
export function verifyClientCertificate(
  cert: X509Certificate,
  ca: X509Certificate | string,
  revoked: ReadonlySet<string> | ((decimalSerial: string) => boolean),
  now = new Date(),
): ClientCertificateVerdict {
  const caCert = typeof ca === 'string' ? new X509Certificate(ca) : ca;
  const decimalSerial = hexToDecimal(normalizeHexSerial(cert.serialNumber));
  const refuse = (reason: ClientCertificateRefusal): ClientCertificateVerdict => ({
    ok: false,
    decimalSerial,
    reason,
  });
  if (!cert.checkIssued(caCert) || !cert.verify(caCert.publicKey)) return refuse('not_issued_by_ca');
  if (new Date(cert.validFrom) > now) return refuse('not_yet_valid');
  if (new Date(cert.validTo) <= now) return refuse('expired');
  if (cert.keyUsage !== undefined && !cert.keyUsage.includes(CLIENT_AUTH)) return refuse('no_client_auth');
  const isRevoked = typeof revoked === 'function' ? revoked(decimalSerial) : revoked.has(decimalSerial);
  if (isRevoked) return refuse('revoked');
  return { ok: true, decimalSerial, subject: cert.subject.replace(/\n/g, ', ') };
}
