import fs from 'node:fs';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';

/** PEM file paths as named in a config section's `tls` block. */
export interface TlsPaths {
  cert: string;
  key: string;
  ca: string;
}

/** The loaded material, ready for `https.createServer` or an `https.Agent`. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
  /** The leaf certificate, parsed (serial, validity, subject). */
  certificate: X509Certificate;
}

/** Thrown with one readable message per problem found in the TLS files. */
export class TlsFilesError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('; '));
    this.name = 'TlsFilesError';
  }
}

function readPem(label: string, file: string, problems: string[]): Buffer | undefined {
  try {
    const data = fs.readFileSync(file);
    if (!data.includes('-----BEGIN ')) {
      problems.push(`${label} ${file}: not a PEM file`);
      return undefined;
    }
    return data;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : String(err);
    problems.push(`${label} ${file}: ${why}`);
    return undefined;
  }
}

function parse<T>(label: string, file: string, problems: string[], fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    problems.push(`${label} ${file}: cannot be parsed (${err instanceof Error ? err.message : String(err)})`);
    return undefined;
  }
}

/**
 * Loads the certificate, key and CA named in config, checking what an
 * operator gets wrong: a missing or unreadable file, a file that is not PEM,
 * a key that does not belong to the certificate. Every problem is listed.
 * Also accepts a combined cert+key file (the original's `machine.pem`) for
 * `cert` and `key` alike.
 */
export function loadTlsFiles(paths: TlsPaths): TlsMaterial {
  const problems: string[] = [];
  const cert = readPem('certificate', paths.cert, problems);
  const key = readPem('private key', paths.key, problems);
  const ca = readPem('CA certificate', paths.ca, problems);
  const certificate = cert && parse('certificate', paths.cert, problems, () => new X509Certificate(cert));
  const keyObject: KeyObject | undefined =
    key && parse('private key', paths.key, problems, () => createPrivateKey(key));
  if (ca) parse('CA certificate', paths.ca, problems, () => new X509Certificate(ca));
  if (certificate && keyObject && !certificate.checkPrivateKey(keyObject)) {
    problems.push(`private key ${paths.key} does not match certificate ${paths.cert}`);
  }
  if (problems.length > 0 || !cert || !key || !ca || !certificate) throw new TlsFilesError(problems);
  return { cert, key, ca, certificate };
}

/** The serial of a certificate in decimal, the form IVIS-core stores and compares (ivis-protocol.md 2.2). */
export function decimalSerial(certificate: X509Certificate): string {
  return BigInt(`0x${certificate.serialNumber}`).toString(10);
}
