import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pino, { type Logger } from 'pino';

/** A key prefix no other test uses, still a Cluster hash tag like the real one. */
export function uniquePrefix(label = 't'): string {
  return `{${label}-${randomBytes(4).toString('hex')}}`;
}

/** A logger for tests: silent unless `TEST_LOG_LEVEL` asks for output. */
export function testLogger(): Logger {
  return pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
}

/** A logger at `level` that keeps every line it writes, parsed, in `lines`: for tests of what is logged. */
export function recordingLogger(level: pino.Level = 'info'): {
  logger: Logger;
  lines: Array<Record<string, unknown>>;
} {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

/** Polls `check` until it returns a truthy value or the deadline passes (then throws with `what`). */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 25 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: Error | undefined;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err instanceof Error ? err : new Error(JSON.stringify(err));
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * The Python a test agent's jobs use: the system's, since a `python3` on PATH
 * may be a pyenv shim under root's 0700 home, which the job user cannot enter.
 */
export const TEST_PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/**
 * A temporary folder for agents' work dirs that the job user
 * (`agent.executor.runAs`) can pass through (0711), as a real work dir's parent is.
 */
export function jobReachableTmpDir(label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), label));
  fs.chmodSync(dir, 0o711);
  return dir;
}
