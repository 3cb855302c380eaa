import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './free-port';

/** A throwaway `redis-server` owned by one test file. */
export interface TestRedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>/0` (with `:<password>@` when started with one) */
  readonly url: string;
  /** Its data folder (AOF files live here when `appendonly` is on). */
  readonly dir: string;
  /** SIGKILLs the server: no shutdown save, connections drop at once. */
  kill(): Promise<void>;
  /** Starts it again on the same port and folder (after {@link kill} or {@link stop}). */
  restart(): Promise<void>;
  /** Stops it for good and removes its folder. */
  stop(): Promise<void>;
}

/** Options of {@link startRedisServer}. */
export interface StartRedisOptions {
  /** Turn on the append-only file (for restart-durability tests). */
  appendonly?: boolean;
  /** `requirepass`: clients must AUTH; `url` carries it (`redis://:<password>@...`). */
  password?: string;
  /** Allow `DEBUG` (e.g. `DEBUG SLEEP` for a slow-Redis test) from local connections. */
  debug?: boolean;
  /** More addresses to listen on besides 127.0.0.1 (a multi-host test's veth addresses). */
  bind?: string[];
}

const REDIS_BINARY = process.env.REDIS_SERVER_BIN ?? 'redis-server';

async function pingUntilUp(
  port: number,
  child: ChildProcess,
  stderr: () => string,
  password: string | undefined,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`redis-server exited with ${child.exitCode} before answering: ${stderr()}`);
    }
    if (await ping(port, password)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`redis-server on port ${port} did not answer within 10 s: ${stderr()}`);
}

function ping(port: number, password: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(500);
    const auth = password === undefined ? '' : `AUTH ${JSON.stringify(password)}\r\n`;
    socket.once('connect', () => socket.write(`${auth}PING\r\n`));
    let answer = '';
    socket.on('data', (data) => {
      answer += data.toString();
      if (!answer.includes('+PONG') && !answer.includes('-')) return;
      socket.destroy();
      resolve(answer.includes('+PONG'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/**
 * Starts a private `redis-server` (Debian's package; `scripts/test.sh`
 * installs it) on a free port, with its own temporary folder. Tests can
 * kill and restart it to exercise reconnects and AOF durability.
 */
export async function startRedisServer(options: StartRedisOptions = {}): Promise<TestRedisServer> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-redis-'));
  let child: ChildProcess | undefined;
  let output = '';

  const launch = async () => {
    output = '';
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      ...(options.bind ?? []),
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      options.appendonly ? 'yes' : 'no',
      '--appendfsync',
      'always',
      '--logfile',
      '',
      '--daemonize',
      'no',
      '--protected-mode',
      'no',
      ...(options.password === undefined ? [] : ['--requirepass', options.password]),
      ...(options.debug ? ['--enable-debug-command', 'local'] : []),
    ];
    const proc = spawn(REDIS_BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-2000)));
    proc.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-2000)));
    const spawnError = new Promise<never>((_, reject) =>
      proc.once('error', (err) =>
        reject(
          new Error(`cannot start ${REDIS_BINARY} (${err.message}); run scripts/ensure-redis-server.sh`),
        ),
      ),
    );
    child = proc;
    await Promise.race([pingUntilUp(port, proc, () => output, options.password), spawnError]);
  };

  const terminate = async (signal: NodeJS.Signals) => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    await exited;
  };

  await launch();
  return {
    port,
    url:
      options.password === undefined
        ? `redis://127.0.0.1:${port}/0`
        : `redis://:${encodeURIComponent(options.password)}@127.0.0.1:${port}/0`,
    dir,
    kill: () => terminate('SIGKILL'),
    restart: async () => {
      await terminate('SIGKILL');
      await launch();
    },
    stop: async () => {
      await terminate('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
