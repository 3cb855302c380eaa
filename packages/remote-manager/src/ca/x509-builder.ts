import { createPublicKey, generateKeyPair, randomBytes, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';

// Certificates are laid out with node-forge and signed with Node's crypto:
// forge's pure-JS RSA would take a noticeable share of a second per signature
// with a 4096-bit CA key (IVIS-core's), and private keys never enter forge.

const generateKeyPairAsync = promisify(generateKeyPair);
const DAY_MS = 86_400_000;

/** A new RSA key pair: the private key as a KeyObject and PKCS#8 PEM. */
export interface NewKey {
  privateKey: KeyObject;
  privateKeyPem: string;
  publicKeyPem: string;
}

/** Generates an RSA key off the event loop (libuv's thread pool). */
export async function newRsaKey(bits: number): Promise<NewKey> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength: bits });
  return {
    privateKey,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/**
 * A random serial as lower-case hex: 128 bits with the top bit clear
 * (positive, RFC 5280 4.1.2.2) and a non-zero first byte (minimal DER).
 */
export function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

/** The validity window of a certificate. */
export interface Validity {
  notBefore: Date;
  days: number;
}

function base(serialHex: string, publicKeyPem: string, validity: Validity): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = serialHex;
  cert.validity.notBefore = validity.notBefore;
  cert.validity.notAfter = new Date(validity.notBefore.getTime() + validity.days * DAY_MS);
  return cert;
}

/** Signs with sha256WithRSAEncryption using Node's crypto and returns the PEM. */
function signToPem(cert: forge.pki.Certificate, signer: KeyObject): string {
  const oid = forge.pki.oids.sha256WithRSAEncryption!;
  cert.signatureOid = oid;
  cert.siginfo.algorithmOid = oid;
  // Typed in forge's code but not in @types/node-forge.
  const pki = forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 };
  const tbs = pki.getTBSCertificate(cert);
  (cert as unknown as { tbsCertificate: forge.asn1.Asn1 }).tbsCertificate = tbs;
  const der = Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary');
  cert.signature = sign('sha256', der, signer).toString('binary');
  return forge.pki.certificateToPem(cert);
}

/** A self-signed CA certificate with the extensions RFC 5280 asks of a CA. */
export function buildCaCertificate(opts: {
  key: NewKey;
  serialHex: string;
  subject: forge.pki.CertificateField[];
  validity: Validity;
}): string {
  const cert = base(opts.serialHex, opts.key.publicKeyPem, opts.validity);
  cert.setSubject(opts.subject);
  cert.setIssuer(opts.subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  return signToPem(cert, opts.key.privateKey);
}

/** The parts of the CA a leaf is signed with. */
export interface Issuer {
  /** The CA certificate, parsed by forge (subject attributes as they are encoded). */
  cert: forge.pki.Certificate;
  key: KeyObject;
}

/** What goes into a leaf certificate. */
export interface LeafSpec {
  kind: 'server' | 'client';
  commonName: string;
  ips: string[];
  dnsNames: string[];
  serialHex: string;
  publicKeyPem: string;
  validity: Validity;
}

/**
 * The key identifier of the issuer for the leaf's authorityKeyIdentifier: the
 * CA's own subjectKeyIdentifier when it has one (the two must match), else
 * the SHA-1 of its public key (RFC 5280 4.2.1.2 method 1), as OpenSSL
 * computes it for a v1 CA such as IVIS-core's.
 */
function issuerKeyId(ca: forge.pki.Certificate): string {
  const ski: { subjectKeyIdentifier?: string } | undefined = ca.getExtension('subjectKeyIdentifier');
  if (ski?.subjectKeyIdentifier) return forge.util.hexToBytes(ski.subjectKeyIdentifier);
  return ca.generateSubjectKeyIdentifier().getBytes();
}

/** A leaf certificate signed by `issuer`: CA:false, key usage, EKU by kind, SANs, SKI and AKI. */
export function buildLeafCertificate(spec: LeafSpec, issuer: Issuer): string {
  const cert = base(spec.serialHex, spec.publicKeyPem, spec.validity);
  cert.setSubject([{ shortName: 'CN', value: spec.commonName }]);
  cert.setIssuer(issuer.cert.subject.attributes);
  const altNames = [
    ...spec.ips.map((ip) => ({ type: 7, ip })),
    ...spec.dnsNames.map((value) => ({ type: 2, value })),
  ];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    {
      name: 'extKeyUsage',
      ...(spec.kind === 'server' ? { serverAuth: true, clientAuth: true } : { clientAuth: true }),
    },
    ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: issuerKeyId(issuer.cert) },
  ]);
  return signToPem(cert, issuer.key);
}

/** The SPKI PEM of a private key (to check that a key file and a certificate belong together). */
export function publicPemOf(key: KeyObject): string {
  return createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
}
