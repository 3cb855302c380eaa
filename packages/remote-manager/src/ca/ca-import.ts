import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { appError } from '@rps/common';

/** A CA certificate and key that were checked to make a working issuer. */
export interface CheckedCa {
  /** The certificate as PEM (re-encoded from its DER: one certificate, nothing else). */
  certPem: string;
  /** The key as unencrypted PKCS#8 PEM. */
  keyPem: string;
  key: KeyObject;
  cert: forge.pki.Certificate;
}

const bad = (why: string) => appError('bad_ca_files', `the CA files cannot be used: ${why}`);

function parseCertificate(certPem: string): X509Certificate {
  try {
    return new X509Certificate(certPem);
  } catch {
    throw bad('the certificate is not a PEM X.509 certificate');
  }
}

function parseKey(keyPem: string): KeyObject {
  try {
    return createPrivateKey(keyPem);
  } catch {
    // The error text may quote the input; say only what is wrong.
    throw bad('the key is not an unencrypted PEM private key');
  }
}

/**
 * Checks a CA's certificate and key before they are used: a self-signed RSA
 * certificate that OpenSSL takes for a CA (`X509_check_ca`; Node's
 * `X509Certificate.ca` says false for a v1 root): a v3 certificate with basicConstraints CA:true and
 * no keyUsage without keyCertSign, or an X.509 v1 certificate without any
 * extensions as IVIS-core's `openssl req -x509` makes it (ivis-protocol.md
 * 4.1), which OpenSSL and Node accept as a trust anchor. The key must be
 * the certificate's own, and the certificate valid now.
 */
export function checkCaFiles(certPemIn: string, keyPemIn: string, now = new Date()): CheckedCa {
  const x509 = parseCertificate(certPemIn);
  const key = parseKey(keyPemIn);
  if (key.asymmetricKeyType !== 'rsa') {
    throw bad(`the key is ${key.asymmetricKeyType ?? 'of an unknown type'}; only RSA CAs are supported`);
  }
  if (!x509.checkPrivateKey(key)) throw bad('the key does not belong to the certificate');
  if (!x509.checkIssued(x509) || !x509.verify(x509.publicKey)) {
    throw bad('the certificate is not self-signed (import the root CA)');
  }
  if (new Date(x509.validTo) <= now) throw bad(`the certificate expired on ${x509.validTo}`);
  if (new Date(x509.validFrom) > now) throw bad(`the certificate is not valid before ${x509.validFrom}`);
  let cert: forge.pki.Certificate;
  try {
    cert = forge.pki.certificateFromPem(x509.toString());
  } catch {
    throw bad('the certificate cannot be read (only RSA certificates are supported)');
  }
  checkIsCa(cert);
  return {
    certPem: x509.toString(),
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    key,
    cert,
  };
}

/**
 * A v1 certificate has no extensions and OpenSSL trusts a self-signed one as
 * a root; a v3 one must say CA:true and, with a keyUsage, keyCertSign.
 */
function checkIsCa(cert: forge.pki.Certificate): void {
  if (cert.version === 0) return;
  const constraints: { cA?: boolean } | undefined = cert.getExtension('basicConstraints');
  if (constraints?.cA !== true) {
    throw bad('the certificate is not a CA certificate (basicConstraints CA:false or missing)');
  }
  const usage: { keyCertSign?: boolean } | undefined = cert.getExtension('keyUsage');
  if (usage !== undefined && usage.keyCertSign !== true) {
    throw bad('the certificate’s keyUsage does not allow signing certificates (keyCertSign)');
  }
}
