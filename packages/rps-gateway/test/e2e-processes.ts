import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// Helpers of the end-to-end tests that run the services as real processes from dist/.

export const ROOT = path.resolve(__dirname, '../../..');

/** `packages/<dir>/dist/main.js`, or a failure telling to build (the integration global setup builds). */
export function serviceMain(dir: string): string {
  const main = path.join(ROOT, 'packages', dir, 'dist/main.js');
  if (!fs.existsSync(main)) throw new Error(`${main} is missing: run npm run build`);
  return main;
}

/** Starts `node <main>` with `RPS_CONFIG=<configFile>`, appending everything it prints to `logs`. */
export function startProcess(
  main: string,
  configFile: string,
  logs: string[],
  env: Record<string, string> = { LOG_LEVEL: 'info' },
): ChildProcess {
  const child = spawn(process.execPath, [main], {
    env: { ...process.env, RPS_CONFIG: configFile, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => logs.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => logs.push(d.toString()));
  return child;
}

/** SIGTERM and wait for the exit (its last log lines included); SIGKILL if it takes longer than `graceMs`. */
export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A task archive (the tar IVIS-core builds) holding one job.py. */
export function taskArchive(jobPy: string): number[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-e2e-task-'));
  fs.writeFileSync(path.join(dir, 'job.py'), jobPy);
  const tar = execFileSync('tar', ['-cf', '-', '-C', dir, '.']);
  fs.rmSync(dir, { recursive: true, force: true });
  return [...tar];
}
