import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * The layout of `manager.caDir`. The CA's names follow the RPS deployment's
 * (`ca.cert`, ivis-protocol.md 4.4); the key sits beside it as `ca.key`
 * (IVIS-core keeps it as `ca/ca.pem`). Issued certificates live under
 * `issued/` by hex serial, their keys next to them.
 */
export const CA_FILES = {
  caCert: 'ca.cert',
  caKey: 'ca.key',
  index: 'index.json',
  issuedDir: 'issued',
} as const;

/** Private keys and the folders holding them: owner only. */
export const KEY_MODE = 0o600;
export const DIR_MODE = 0o700;
/** Certificates are public. */
export const CERT_MODE = 0o644;

/** The paths of one CA directory. */
export function caPaths(dir: string) {
  return {
    dir,
    caCert: path.join(dir, CA_FILES.caCert),
    caKey: path.join(dir, CA_FILES.caKey),
    index: path.join(dir, CA_FILES.index),
    issuedDir: path.join(dir, CA_FILES.issuedDir),
    issuedCert: (serial: string) => path.join(dir, CA_FILES.issuedDir, `${serial}.cert`),
    issuedKey: (serial: string) => path.join(dir, CA_FILES.issuedDir, `${serial}.key`),
  };
}

/** Creates `dir` (and parents) and makes it 0700 even if it existed with a wider mode. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: DIR_MODE });
  await fs.chmod(dir, DIR_MODE);
}

/**
 * Writes a file so that readers see the old or the new content, never a
 * part: a temporary file in the same folder, created with its final mode
 * (a key is never readable by others, not even for a moment), fsynced, renamed.
 */
export async function writeFileAtomic(file: string, content: string, mode: number): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(tmp, 'wx', mode);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    // The umask may have narrowed the mode at creation; never widened it.
    await fs.chmod(tmp, mode);
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** Writes a new file that must not exist yet (no overwrite of a key, as IVIS-core's scripts refuse too). */
export async function writeFileExclusive(file: string, content: string, mode: number): Promise<void> {
  const handle = await fs.open(file, 'wx', mode);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.chmod(file, mode);
}

/** True when the path exists (any type). */
export async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
