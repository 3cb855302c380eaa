import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
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

/** Starts `node [nodeArgs] <main>` with `RPS_CONFIG=<configFile>`, appending everything it prints to `logs`. */
export function startProcess(
  main: string,
  configFile: string,
  logs: string[],
  env: Record<string, string> = { LOG_LEVEL: 'info' },
  nodeArgs: readonly string[] = [],
): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgs, main], {
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

/** A task archive (the tar IVIS-core builds) holding job.py and any `files` beside it. */
export function taskArchive(jobPy: string, files: Record<string, string | Buffer> = {}): number[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-e2e-task-'));
  fs.writeFileSync(path.join(dir, 'job.py'), jobPy);
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content);
  const tar = execFileSync('tar', ['-cf', '-', '-C', dir, '.']);
  fs.rmSync(dir, { recursive: true, force: true });
  return [...tar];
}

/** A push as the IVIS-core double of the end-to-end tests received it. */
export interface Push {
  path: string;
  body: { runId?: number; status?: { status: number }; output?: string; type?: string; data?: unknown };
}

/** IVIS-core's trusted endpoint as the agents reach it (through the forwarder in production): records every push, answers {}. */
export async function startFakeIvis() {
  const received: Push[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        path: req.url ?? '',
        body: JSON.parse(Buffer.concat(chunks).toString() || '{}') as Push['body'],
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A run request body as IVIS-core sends it, with a task archive holding `jobPy`. */
export function runBody(runId: number, taskId: number, jobPy: string) {
  return {
    params: {},
    entities: { signalSets: {}, signals: {} },
    owned: { signalSets: {} },
    type: 'python',
    codeArchive: { type: 'Buffer', data: taskArchive(jobPy) },
    accessToken: null,
    state: null,
    jobId: 5,
    runId,
    taskId,
  };
}
