import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import type { CertificateInfo } from './ca.types';

/** Hex serial as the index keys it: lower case, no `0x`, no leading zeros. */
export function normalizeHexSerial(hex: string): string {
  return BigInt(`0x${hex.replace(/^0x/i, '')}`).toString(16);
}

/** The decimal form of a hex serial (the gateway's revoked set, IVIS-core's `cert_serial`). */
export function hexToDecimal(hex: string): string {
  return BigInt(`0x${hex}`).toString(10);
}

/** An IP address in its canonical text form (IPv6 compressed, `::1`), or null if it is none. */
export function canonicalIp(ip: string): string | null {
  if (net.isIPv4(ip)) return ip;
  if (!net.isIPv6(ip)) return null;
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

/** The SANs as Node prints them (`DNS:a, IP Address:1.2.3.4`), split by type. */
function sansOf(cert: X509Certificate): { ips: string[]; dnsNames: string[] } {
  const ips: string[] = [];
  const dnsNames: string[] = [];
  for (const part of (cert.subjectAltName ?? '').split(/,\s*/)) {
    if (part.startsWith('DNS:')) dnsNames.push(part.slice(4));
    else if (part.startsWith('IP Address:')) {
      const ip = canonicalIp(part.slice(11));
      if (ip !== null) ips.push(ip);
    }
  }
  return { ips, dnsNames };
}

/** The subject's CN (the last one if several), or '' if none. */
function commonNameOf(subject: string): string {
  const cns = subject
    .split('\n')
    .filter((line) => line.startsWith('CN='))
    .map((line) => line.slice(3));
  return cns.at(-1) ?? '';
}

/** The public description of a certificate, read from its PEM (nothing of a key goes in). */
export function describeCertificate(certPem: string, kind: CertificateInfo['kind']): CertificateInfo {
  const cert = new X509Certificate(certPem);
  const serial = normalizeHexSerial(cert.serialNumber);
  return {
    serial,
    decimalSerial: hexToDecimal(serial),
    kind,
    commonName: commonNameOf(cert.subject),
    subject: cert.subject.replace(/\n/g, ', '),
    issuer: cert.issuer.replace(/\n/g, ', '),
    ...sansOf(cert),
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
    fingerprint256: cert.fingerprint256,
    revoked: false,
    revokedAt: null,
  };
}

/**
 * Finds a serial given as hex (the index's form, any case, `0x` allowed) or
 * as decimal (IVIS-core's `cert_serial`, the gateway's set): the hex reading
 * wins when both match.
 */
export function findBySerial<T extends { serial: string; decimalSerial: string }>(
  entries: readonly T[],
  serial: string,
): T | undefined {
  const text = serial.trim();
  if (/^(0x)?[0-9a-f]+$/i.test(text)) {
    const hex = normalizeHexSerial(text);
    const byHex = entries.find((e) => e.serial === hex);
    if (byHex) return byHex;
  }
  if (/^[0-9]+$/.test(text)) {
    const decimal = BigInt(text).toString(10);
    return entries.find((e) => e.decimalSerial === decimal);
  }
  return undefined;
}
