import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestPki, freePort, startRedisServer, uniquePrefix, waitFor } from '@rps/common/testing';
import type { TestPki, TestRedisServer } from '@rps/common/testing';
import { GATEWAY_NODE_FLAGS } from '../src/gateway.constants';
import { serviceMain, startProcess, stopProcess } from './e2e-processes';

// The gateway as a real process (dist/main.js), started with and without its
// heap flags (gateway.constants.ts, GATEWAY_NODE_FLAGS): its start line names
// node's flags, and a start without them warns, naming what is missing.

interface LogLine {
  msg?: string;
  nodeFlags?: string[];
  missing?: string[];
}

describe('the gateway started with or without its node flags', () => {
  let redis: TestRedisServer;
  let pki: TestPki;
  let tmp: string;
  let configFile: string;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    redis = await startRedisServer();
    pki = createTestPki();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-node-flags-'));
    configFile = path.join(tmp, 'gateway.yaml');
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        redis: { url: redis.url, prefix: uniquePrefix('flags') },
        log: { level: 'info' },
        gateway: {
          listen: { host: '127.0.0.1', port: await freePort() },
          admin: { host: '127.0.0.1', port: await freePort() },
          tls: pki.paths,
          clients: [pki.clientIdentity],
        },
      }),
    );
  });

  afterEach(async () => {
    if (child) await stopProcess(child);
    child = undefined;
  });

  afterAll(async () => {
    await redis.stop();
    pki.cleanup();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** Starts the gateway with `nodeArgs` and returns its log lines once it has logged its start. */
  async function start(nodeArgs: readonly string[]): Promise<LogLine[]> {
    const logs: string[] = [];
    child = startProcess(serviceMain('rps-gateway'), configFile, logs, { LOG_LEVEL: 'info' }, nodeArgs);
    const closed = new Promise((resolve) => child?.once('close', resolve));
    const parsed = () =>
      logs
        .join('')
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as LogLine);
    await waitFor(
      'the gateway to log its start',
      () => parsed().some((l) => l.msg === 'rps-gateway started'),
      {
        timeoutMs: 30_000,
      },
    );
    // Stopped, and its output read to the end ('close'): a warning logged after the start line is in it.
    await stopProcess(child);
    await closed;
    return parsed();
  }

  const heapWarnings = (lines: LogLine[]) => lines.filter((l) => l.msg?.includes("gateway's heap flags"));

  it('when started without them then it warns, naming every missing flag', async () => {
    const lines = await start([]);
    expect(lines.find((l) => l.msg === 'rps-gateway started')?.nodeFlags).toEqual([]);
    expect(heapWarnings(lines).map((l) => l.missing)).toEqual([[...GATEWAY_NODE_FLAGS]]);
  });

  it('when started with GATEWAY_NODE_FLAGS then its start line names them and nothing warns', async () => {
    const lines = await start(GATEWAY_NODE_FLAGS);
    expect(lines.find((l) => l.msg === 'rps-gateway started')?.nodeFlags).toEqual([...GATEWAY_NODE_FLAGS]);
    expect(heapWarnings(lines)).toEqual([]);
  });
});
