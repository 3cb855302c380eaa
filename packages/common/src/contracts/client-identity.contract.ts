import type { X509Certificate } from 'node:crypto';
import { z } from 'zod';

/**
 * The client certificates the gateway lets in (`gateway.clients` in the
 * config, and the hash at `keys.gatewayClients()` that remote-manager edits at
 * runtime). A certificate is named either by its SHA-256 fingerprint or by its
 * serial plus issuer DN (unique per RFC 5280). Values are normalised here, once,
 * so matching is a string comparison: fingerprints upper-case with colons,
 * serials decimal, issuers {@link canonicalDn}.
 */
export type ClientMatch = { fingerprint256: string } | { serial: string; issuer: string };

/** One allowed client: a name for the logs, and how to recognise its certificate. */
export type ClientIdentity = { name: string } & ClientMatch;

/** What the gateway reads off a presented client certificate, in the same normal forms. */
export interface CertificateIdentity {
  fingerprint256: string;
  /** Decimal, as IVIS-core and the revocation list write it. */
  serial: string;
  issuer: string;
  subject: string;
}

/** `AB:CD:...` (32 pairs) or 64 bare hex digits, any case; null if neither. */
export function normalizeFingerprint256(text: string): string | null {
  const trimmed = text.trim();
  const hex = /^([0-9a-f]{2}:){31}[0-9a-f]{2}$/i.test(trimmed)
    ? trimmed.replace(/:/g, '')
    : /^[0-9a-f]{64}$/i.test(trimmed)
      ? trimmed
      : null;
  return hex === null ? null : (hex.toUpperCase().match(/../g) ?? []).join(':');
}

/** A decimal serial, or hex with a `0x` prefix (colons allowed); null if neither. Returns decimal. */
export function normalizeSerial(value: string | number): string | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? String(value) : null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return BigInt(text).toString(10);
  const hex = /^0x([0-9a-f]{1,2}(:?[0-9a-f]{1,2})*)$/i.exec(text);
  return hex ? BigInt(`0x${hex[1]!.replace(/:/g, '')}`).toString(10) : null;
}

function splitUnescaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\\' && i + 1 < text.length) {
      current += ch + text[i + 1]!;
      i++;
    } else if (ch === '"') {
      quoted = !quoted;
      current += ch;
    } else if (ch === separator && !quoted) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts;
}

function attributeValue(raw: string): string {
  const value = raw.trim();
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    try {
      return JSON.parse(value) as string;
    } catch {
      return value.slice(1, -1);
    }
  }
  return value.replace(/\\(.)/g, '$1');
}

/**
 * A distinguished name in one comparable form, from the ways tools print it:
 * Node's `x509.issuer` (one `TYPE=value` per line), OpenSSL 3's
 * `O = IVIS-core, OU = IVIS-core CA, CN = IVIS-core CA`, RFC 2253 (reversed
 * order) and the old `/O=.../CN=...`. Attribute types are upper-cased, values
 * trimmed, and the attributes sorted, so the order of printing does not
 * matter. Null if a part is not `TYPE=value`.
 */
export function canonicalDn(text: string): string | null {
  const trimmed = text.trim();
  const parts = trimmed.includes('\n')
    ? trimmed.split('\n')
    : trimmed.startsWith('/')
      ? splitUnescaped(trimmed.slice(1), '/')
      : splitUnescaped(trimmed, ',');
  const attributes: string[] = [];
  for (const part of parts) {
    const eq = part.indexOf('=');
    const type = eq > 0 ? part.slice(0, eq).trim() : '';
    const value = eq > 0 ? attributeValue(part.slice(eq + 1)) : '';
    if (!/^[A-Za-z][\w.-]*$/.test(type) || value === '') return null;
    attributes.push(`${type.toUpperCase()}=${value}`);
  }
  return attributes.length > 0 ? attributes.sort().join('\n') : null;
}

/** The identity of a presented certificate, for matching and for log lines (never key material). */
export function certificateIdentity(certificate: X509Certificate): CertificateIdentity {
  return {
    fingerprint256: certificate.fingerprint256.toUpperCase(),
    serial: BigInt(`0x${certificate.serialNumber}`).toString(10),
    issuer: canonicalDn(certificate.issuer) ?? certificate.issuer,
    subject: certificate.subject.replace(/\n/g, ', '),
  };
}

const FINGERPRINT_HELP =
  "must be a SHA-256 fingerprint: 32 hex pairs separated by colons, as `openssl x509 -noout -fingerprint -sha256` or Node's cert.fingerprint256 print it";

const matchFields = {
  fingerprint256: z.string().optional(),
  serial: z.union([z.string(), z.number()]).optional(),
  issuer: z.string().optional(),
};

function toMatch(
  fields: {
    fingerprint256?: string | undefined;
    serial?: string | number | undefined;
    issuer?: string | undefined;
  },
  ctx: z.RefinementCtx,
): ClientMatch | null {
  const issue = (path: string, message: string) => {
    ctx.addIssue({ code: 'custom', path: [path], message });
    return null;
  };
  const bySerial = fields.serial !== undefined || fields.issuer !== undefined;
  if (fields.fingerprint256 !== undefined) {
    if (bySerial)
      return issue('fingerprint256', 'give either fingerprint256 or serial with issuer, not both');
    const fingerprint256 = normalizeFingerprint256(fields.fingerprint256);
    return fingerprint256 === null ? issue('fingerprint256', FINGERPRINT_HELP) : { fingerprint256 };
  }
  if (fields.serial === undefined || fields.issuer === undefined) {
    return fields.serial === undefined && fields.issuer === undefined
      ? issue('fingerprint256', 'required: fingerprint256, or serial with issuer')
      : issue(fields.serial === undefined ? 'serial' : 'issuer', 'serial and issuer go together');
  }
  const serial = normalizeSerial(fields.serial);
  if (serial === null) {
    return issue('serial', 'must be a decimal serial (quote large ones) or hex with a 0x prefix');
  }
  const issuer = canonicalDn(fields.issuer);
  if (issuer === null) {
    return issue(
      'issuer',
      'must be a distinguished name such as "O = IVIS-core, OU = IVIS-core CA, CN = IVIS-core CA"',
    );
  }
  return { serial, issuer };
}

/** How a certificate is recognised, without a name: the value of a `keys.gatewayClients()` hash field. */
export const clientMatchSchema = z
  .strictObject(matchFields)
  .transform((fields, ctx): ClientMatch => toMatch(fields, ctx) ?? z.NEVER);

/** One entry of `gateway.clients`. */
export const clientIdentitySchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ @ -'),
    ...matchFields,
  })
  .transform(({ name, ...fields }, ctx): ClientIdentity => {
    const match = toMatch(fields, ctx);
    return match === null ? z.NEVER : { name, ...match };
  });
