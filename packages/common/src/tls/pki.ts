import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

/** A certificate and its private key, both PEM. */
export interface KeyPairPem {
  cert: string;
  key: string;
}

/** What to put into a certificate. */
export interface CertificateSpec {
  commonName: string;
  /** Extra subject attributes, e.g. `{ O: 'IVIS-core' }`. */
  subject?: Record<string, string>;
  /** IP addresses for the subjectAltName. */
  ips?: string[];
  /** DNS names for the subjectAltName. */
  dnsNames?: string[];
  /** Validity start; default now minus one minute (clock skew). */
  notBefore?: Date;
  /** Validity in days from notBefore; default 825. */
  days?: number;
  /** Explicit serial as a hex string; default 128 random bits. */
  serialHex?: string;
  /** RSA modulus length; default 2048. */
  bits?: number;
  /**
   * Extended key usage of a leaf; default both, as IVIS-core's certificates
   * (ivis-protocol.md 4.2, 4.3). Tests use `{ serverAuth: true }` alone for a
   * certificate that must not pass as a client.
   */
  extKeyUsage?: { serverAuth?: boolean; clientAuth?: boolean };
}

/** Options for a CA certificate. */
export interface CaSpec extends CertificateSpec {
  /**
   * Make an X.509 v1 certificate without extensions, as IVIS-core's own CA
   * comes out of `openssl req -x509` (FACTS.md): code that trusts IVIS CAs must accept it.
   */
  v1?: boolean;
}

function newKeyPair(bits: number): {
  privateKey: forge.pki.rsa.PrivateKey;
  publicKey: forge.pki.rsa.PublicKey;
} {
  // Node's native generator is ~100x faster than forge's pure-JS one.
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: bits,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const forgeKey = forge.pki.privateKeyFromPem(privateKey);
  return { privateKey: forgeKey, publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e) };
}

function randomSerialHex(): string {
  // Positive (top bit clear) and non-zero, as RFC 5280 asks.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

function subjectOf(spec: CertificateSpec): forge.pki.CertificateField[] {
  const attrs: forge.pki.CertificateField[] = Object.entries(spec.subject ?? {}).map(
    ([shortName, value]) => ({
      shortName,
      value,
    }),
  );
  attrs.push({ shortName: 'CN', value: spec.commonName });
  return attrs;
}

function baseCertificate(spec: CertificateSpec, publicKey: forge.pki.rsa.PublicKey): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = spec.serialHex ?? randomSerialHex();
  const notBefore = spec.notBefore ?? new Date(Date.now() - 60_000);
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = new Date(notBefore.getTime() + (spec.days ?? 825) * 86_400_000);
  cert.setSubject(subjectOf(spec));
  return cert;
}

function toPem(cert: forge.pki.Certificate, key: forge.pki.rsa.PrivateKey): KeyPairPem {
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(key) };
}

/** Creates a self-signed CA certificate and key. */
export function createCa(spec: CaSpec): KeyPairPem {
  const keys = newKeyPair(spec.bits ?? 2048);
  const cert = baseCertificate({ days: 3650, ...spec }, keys.publicKey);
  cert.setIssuer(cert.subject.attributes);
  if (spec.v1) {
    (cert as unknown as { version: number }).version = 0;
  } else {
    cert.setExtensions([
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
  }
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return toPem(cert, keys.privateKey);
}

/**
 * Issues a leaf certificate signed by a CA, by default usable as TLS server
 * and client certificate (like IVIS executor certificates: serverAuth +
 * clientAuth; `spec.extKeyUsage` narrows it).
 */
export function issueCertificate(ca: KeyPairPem, spec: CertificateSpec): KeyPairPem {
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const caKey = forge.pki.privateKeyFromPem(ca.key);
  const keys = newKeyPair(spec.bits ?? 2048);
  const cert = baseCertificate(spec, keys.publicKey);
  cert.setIssuer(caCert.subject.attributes);
  const altNames = [
    ...(spec.ips ?? []).map((ip) => ({ type: 7, ip })),
    ...(spec.dnsNames ?? []).map((value) => ({ type: 2, value })),
  ];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', ...(spec.extKeyUsage ?? { serverAuth: true, clientAuth: true }) },
    ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return toPem(cert, keys.privateKey);
}
