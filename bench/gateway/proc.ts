/**
 * What the gateway benchmark reads off the machine: CPU times from /proc,
 * Redis's pid and node flags from the environment, shared by its scenarios
 * (run.ts, dispatch.ts).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRedis, closeRedis, waitForRedis } from '@rps/common';
import { testLogger } from '@rps/common/testing';

/** The space-separated words of environment variable `name` (node flags), `fallback` when it is unset. */
export function envWords(name: string, fallback = ''): string[] {
  return (process.env[name] ?? fallback).split(' ').filter(Boolean);
}

/** Milliseconds per clock tick of /proc's CPU times (USER_HZ). */
export const TICK_MS = 1000 / (Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100);

/**
 * CPU time (user + system, all threads, in ms) a process has used so far
 * (`own`), and what it collected from the children it reaped (`reaped`).
 * Throws when the process is gone.
 */
export function processCpuMs(pid: number): { own: number; reaped: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces:
  // utime is field 14, stime 15, cutime 16, cstime 17 (the state, field 3, comes first).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const at = (field: number) => Number(fields[field - 3]);
  return { own: (at(14) + at(15)) * TICK_MS, reaped: (at(16) + at(17)) * TICK_MS };
}

/** The pid of a redis-server, from INFO. */
export async function redisPid(url: string): Promise<number> {
  const admin = createRedis({ url, role: 'worker', name: 'bench-pid', logger: testLogger() });
  try {
    await waitForRedis(admin);
    return Number(/process_id:(\d+)/.exec(await admin.info('server'))?.[1]);
  } finally {
    await closeRedis(admin);
  }
}
