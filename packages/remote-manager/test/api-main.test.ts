import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, startRedisServer, uniquePrefix, waitFor, type TestRedisServer } from '@rps/common/testing';
import { serviceMain, startProcess, stopProcess } from '../../rps-gateway/test/e2e-processes';
import type { ChildProcess } from 'node:child_process';

// The manager as a process (dist/main.js): what it refuses and what it serves.
describe('remote-manager main', () => {
  let server: TestRedisServer;
  let dir: string;
  const children: ChildProcess[] = [];

  const writeConfig = (name: string, manager: object) => {
    const file = path.join(dir, name);
    fs.writeFileSync(
      file,
      JSON.stringify({
        redis: { url: server.url, prefix: uniquePrefix('mgr-main') },
        manager: { caDir: 'ca', ...manager },
      }),
    );
    return file;
  };
  const exitOf = (child: ChildProcess) =>
    new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  beforeAll(async () => {
    server = await startRedisServer();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-mgr-main-'));
  });
  afterAll(async () => {
    await Promise.all(children.map((c) => stopProcess(c)));
    await server?.stop();
  });

  it('when no token is configured then it refuses to start with one line and exit code 2', async () => {
    const logs: string[] = [];
    const child = startProcess(serviceMain('remote-manager'), writeConfig('none.yaml', {}), logs, {
      LOG_LEVEL: 'info',
      RPS_MANAGER_TOKEN: '',
    });
    children.push(child);
    expect(await exitOf(child)).toBe(2);
    const text = logs.join('');
    expect(text.trim().split('\n')).toHaveLength(1);
    expect(text).toContain('manager.token: required');
  });

  it('when the token is too short then the config error names it, exit code 2', async () => {
    const logs: string[] = [];
    const child = startProcess(serviceMain('remote-manager'), writeConfig('short.yaml', {}), logs, {
      RPS_MANAGER_TOKEN: 'short',
    });
    children.push(child);
    expect(await exitOf(child)).toBe(2);
    expect(logs.join('')).toContain('manager.token: must be at least 16 characters');
  });

  it('when RPS_MANAGER_TOKEN is set then it serves the API with that token, health, OpenAPI and the dashboard page', async () => {
    const port = await freePort();
    const logs: string[] = [];
    const token = 'main-test-token-0123456789';
    const child = startProcess(
      serviceMain('remote-manager'),
      writeConfig('ok.yaml', { listen: { host: '127.0.0.1', port } }),
      logs,
      { LOG_LEVEL: 'info', RPS_MANAGER_TOKEN: token },
    );
    children.push(child);
    const url = `http://127.0.0.1:${port}`;
    await waitFor(
      'the manager to be ready',
      async () => (await fetch(`${url}/readyz`).catch(() => null))?.ok,
      {
        timeoutMs: 30_000,
        intervalMs: 100,
      },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs.join('')}`);
    });
    expect((await fetch(`${url}/api/peers`)).status).toBe(401);
    const peers = await fetch(`${url}/api/peers`, { headers: { authorization: `Bearer ${token}` } });
    expect(await peers.json()).toEqual({ peers: [] });
    expect(((await (await fetch(`${url}/openapi.json`)).json()) as { openapi: string }).openapi).toBe(
      '3.0.3',
    );
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(logs.join('')).not.toContain(token);
    await stopProcess(child);
    expect(child.exitCode).toBe(0);
  });
});
