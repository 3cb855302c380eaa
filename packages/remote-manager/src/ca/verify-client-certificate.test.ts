import { X509Certificate } from 'node:crypto';
import { createCa, issueCertificate } from '@rps/common';
import { verifyClientCertificate } from './verify-client-certificate';

// Pure checks on in-memory certificates (no files, no network).

describe('verifyClientCertificate', () => {
  const ca = createCa({ commonName: 'Pool CA', v1: true });
  const other = createCa({ commonName: 'Other CA' });
  const x509 = (pem: string) => new X509Certificate(pem);
  const client = x509(issueCertificate(ca, { commonName: 'admin', extKeyUsage: { clientAuth: true } }).cert);
  const serial = BigInt(`0x${client.serialNumber}`).toString(10);

  it('when a valid client certificate of the CA is not revoked then it passes', () => {
    expect(verifyClientCertificate(client, ca.cert, new Set())).toEqual({
      ok: true,
      decimalSerial: serial,
      subject: 'CN=admin',
    });
  });

  it('when its serial is revoked then it is refused as revoked, by set or by function', () => {
    expect(verifyClientCertificate(client, ca.cert, new Set([serial]))).toMatchObject({
      ok: false,
      reason: 'revoked',
    });
    expect(verifyClientCertificate(client, ca.cert, (s) => s === serial)).toMatchObject({
      ok: false,
      reason: 'revoked',
    });
  });

  it.each<[string, () => X509Certificate, string]>([
    ['of another CA', () => x509(issueCertificate(other, { commonName: 'admin' }).cert), 'not_issued_by_ca'],
    [
      'expired',
      () =>
        x509(
          issueCertificate(ca, {
            commonName: 'a',
            notBefore: new Date(Date.now() - 10 * 86_400_000),
            days: 1,
          }).cert,
        ),
      'expired',
    ],
    [
      'not valid yet',
      () =>
        x509(issueCertificate(ca, { commonName: 'a', notBefore: new Date(Date.now() + 86_400_000) }).cert),
      'not_yet_valid',
    ],
    [
      'for serverAuth only',
      () => x509(issueCertificate(ca, { commonName: 'a', extKeyUsage: { serverAuth: true } }).cert),
      'no_client_auth',
    ],
  ])('when the certificate is %s then it is refused', (_label, cert, reason) => {
    expect(verifyClientCertificate(cert(), ca.cert, new Set())).toMatchObject({ ok: false, reason });
  });
});
