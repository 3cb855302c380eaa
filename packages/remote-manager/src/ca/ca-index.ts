import fs from 'node:fs/promises';
import { z } from 'zod';
import { CERT_MODE, writeFileAtomic } from './ca-files';
import type { CertificateInfo } from './ca.types';

// The index of a CA directory (`index.json`): how the CA came to be and every
// certificate it issued or recorded. It holds no key material, so it is 0644
// like the certificates; it is rewritten whole, atomically, on every change.

/** A certificate as the CA describes it, no key material: the index's entries and the API's answers. */
export const certificateInfoSchema = z.object({
  serial: z.string().regex(/^[0-9a-f]+$/),
  decimalSerial: z.string().regex(/^[0-9]+$/),
  kind: z.enum(['server', 'client', 'ca', 'imported']),
  commonName: z.string(),
  subject: z.string(),
  issuer: z.string(),
  ips: z.array(z.string()),
  dnsNames: z.array(z.string()),
  notBefore: z.string(),
  notAfter: z.string(),
  fingerprint256: z.string(),
  revoked: z.boolean(),
  revokedAt: z.string().nullable(),
});

const entrySchema = certificateInfoSchema.extend({
  /** Whether `issued/<serial>.key` exists (a recorded certificate has no key here). */
  hasKey: z.boolean(),
});

const indexSchema = z.object({
  version: z.literal(1),
  /** `init`: made here; `import`: an existing CA's files (IVIS-core's). */
  origin: z.enum(['init', 'import']),
  createdAt: z.string(),
  certificates: z.array(entrySchema),
});

/** One certificate of the index. */
export type IndexEntry = z.infer<typeof entrySchema>;
/** The whole index file. */
export type CaIndex = z.infer<typeof indexSchema>;

/** Reads and validates the index; a missing file is null, a malformed one an error naming the file. */
export async function readIndex(file: string): Promise<CaIndex | null> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const parsed = indexSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${file} is not a valid CA index: ${parsed.error.message}`);
  return parsed.data;
}

/** Writes the index atomically (tmp + fsync + rename). */
export async function writeIndex(file: string, index: CaIndex): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(index, null, 2)}\n`, CERT_MODE);
}

/** The public view of an index entry (drops bookkeeping fields). */
export function toInfo(entry: IndexEntry): CertificateInfo {
  const { hasKey: _hasKey, ...info } = entry;
  return { ...info, ips: [...info.ips], dnsNames: [...info.dnsNames] };
}
