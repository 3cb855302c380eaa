import { z } from 'zod';
import { MAX_VALIDITY_DAYS } from './ca.types';
import { canonicalIp } from './certificate-info';

/** A DNS name for a SAN: labels of letters, digits and hyphens, an optional leading `*.` wildcard. */
const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

const ip = z
  .string()
  .refine((value) => canonicalIp(value) !== null, 'must be an IPv4 or IPv6 address')
  .transform((value) => canonicalIp(value)!);

/**
 * The input of {@link LocalCa.issue} (and of the API's `POST /api/certificates`,
 * which can use this schema as it is, for validation and the OpenAPI document).
 * A server certificate needs at least one SAN: TLS clients check the
 * address they dial against the SANs, never against the CN.
 */
export const issueRequestSchema = z
  .strictObject({
    kind: z.enum(['server', 'client']),
    /** X.520 caps a CN at 64 characters. */
    commonName: z.string().trim().min(1).max(64),
    ips: z.array(ip).max(64).default([]),
    dnsNames: z
      .array(z.string().max(253).regex(DNS_NAME, 'must be a DNS name (letters, digits, hyphens, dots)'))
      .max(64)
      .default([]),
    validityDays: z.number().int().min(1).max(MAX_VALIDITY_DAYS).optional(),
    /** ISO 8601 string or Date; a past date backdates the certificate. */
    notBefore: z.union([z.date(), z.iso.datetime({ offset: true }).transform((s) => new Date(s))]).optional(),
  })
  .superRefine((req, ctx) => {
    if (req.kind === 'server' && req.ips.length === 0 && req.dnsNames.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['ips'],
        message: 'a server certificate needs at least one IP address or DNS name',
      });
    }
  });

/** A validated issue request. */
export type ParsedIssueRequest = z.output<typeof issueRequestSchema>;
