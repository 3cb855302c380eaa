import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../../../..');
const MAIN = path.resolve(__dirname, '../../dist/main.js');

/** Builds the package (incremental: quick when nothing changed), so dist/main.js is current. */
export function buildAgent(): void {
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-b', 'packages/peer-agent'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
}

/** An agent running as its own process from dist/main.js, as in production. */
export interface AgentProcess {
  child: ChildProcess;
  logs(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
}

/** Writes the config (JSON is YAML) and returns its path. */
export function writeConfig(config: object): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-agent-cfg-'));
  const file = path.join(dir, 'agent.yaml');
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

export function startAgentProcess(configFile: string, env: Record<string, string> = {}): AgentProcess {
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, RPS_CONFIG: configFile, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (data: Buffer) => {
    output = (output + data.toString()).slice(-200_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });
  return { child, logs: () => output, exited };
}
