import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRedisServer, waitFor, type TestRedisServer } from '@rps/common/testing';
import {
  openPool,
  startTestAgent,
  type Pool,
  type TestAgent,
} from '../../peer-agent/test/support/agent-harness';
import { startFakeIvis, type FakeIvis } from '../../peer-agent/test/support/fake-ivis';
import { runBody } from '../../rps-gateway/test/e2e-processes';
import { startTestManager, TEST_TOKEN, type TestManager } from './support/manager-harness';

const CLI = path.resolve(__dirname, '../dist/cli/main.js');

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the `rps` bin as its own process (asynchronously: the manager answers from this process). */
function rps(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('the rps CLI against a live pool', () => {
  let server: TestRedisServer;
  let ivis: FakeIvis;
  let pool: Pool;
  let agent: TestAgent;
  let m: TestManager;
  let env: Record<string, string>;
  let tmp: string;

  beforeAll(async () => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build`);
    server = await startRedisServer();
    ivis = await startFakeIvis();
    pool = await openPool(server.url);
    m = await startTestManager(server.url, { prefix: pool.keys.prefix });
    agent = await startTestAgent(server.url, pool, { id: 'cli-peer', ivisUrl: ivis.url });
    env = { RPS_MANAGER_URL: m.url, RPS_MANAGER_TOKEN: TEST_TOKEN };
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-cli-'));
    await pool.submit(5101, runBody(5101, 9, 'print("cli run")\n'));
    await waitFor(
      'run 5101 to succeed',
      async () => (await pool.redis.hget(pool.keys.run(5101), 'state')) === 'succeeded',
      { timeoutMs: 120_000, intervalMs: 100 },
    );
  }, 180_000);
  afterAll(async () => {
    await agent?.stop();
    await m?.close();
    await pool?.close();
    await ivis?.close();
    await server?.stop();
  });

  it('when peers are listed then people get a table and scripts get JSON', async () => {
    const human = await rps(['peers'], env);
    expect(human.code).toBe(0);
    expect(human.stdout.split('\n')[0]).toMatch(/^PEER\s+STATE\s+ADDRESS/);
    expect(human.stdout).toMatch(/cli-peer\s+active\s+127\.0\.0\.1/);
    const json = await rps(['peers', '--json'], env);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { peers: Array<{ id: string; state: string }> };
    expect(parsed.peers).toEqual([expect.objectContaining({ id: 'cli-peer', state: 'active' })]);
  });

  it('when runs are listed and one is shown then state, peer and output appear, filtered by state', async () => {
    const list = await rps(['runs', '--state', 'succeeded'], env);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/5101\s+succeeded\s+cli-peer\s+9/);
    const none = await rps(['runs', '--state', 'failed', '--json'], env);
    expect(JSON.parse(none.stdout)).toEqual({ runs: [] });
    const one = await rps(['run', '5101'], env);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/state\s+succeeded/);
    expect(one.stdout).toContain('cli run');
    const json = JSON.parse((await rps(['run', '5101', '--json'], env)).stdout) as {
      run: { peerId: string };
    };
    expect(json.run.peerId).toBe('cli-peer');
    const queues = await rps(['queues'], env);
    expect(queues.stdout).toMatch(/^runs\s+0\s+0/m);
  });

  it('when a peer is drained and undrained through the CLI then it drains and takes runs again; an unknown peer is exit 1', async () => {
    const drain = await rps(['drain', 'cli-peer'], env);
    expect(drain.code).toBe(0);
    await waitFor(
      'the peer to be draining',
      async () => JSON.parse((await rps(['peers', '--json'], env)).stdout).peers[0].drained === true,
    );
    expect((await rps(['undrain', 'cli-peer'], env)).code).toBe(0);
    await waitFor(
      'the peer to take runs again',
      async () => JSON.parse((await rps(['peers', '--json'], env)).stdout).peers[0].drained === false,
    );
    expect((await rps(['drain', 'nobody'], env)).code).toBe(1);
  });

  it('when the CA and a machine are made through the CLI then the bundle files land with their modes', async () => {
    expect((await rps(['ca', 'init', '--cn', 'CLI CA'], env)).code).toBe(0);
    const out = path.join(tmp, 'bundle');
    const add = await rps(
      [
        'machines',
        'add',
        '--name',
        'cli-m',
        '--address',
        '10.1.2.3',
        '--type',
        'rjr',
        '--param',
        'url=http://10.1.2.3:8080',
        '--out',
        out,
      ],
      env,
    );
    expect(add.stderr).toContain(`wrote ${path.join(out, 'svr.key')} (0600)`);
    expect(add.code).toBe(0);
    expect(add.stdout).toMatch(/cli-m\s+cli-m\s+rjr\s+provisioned\s+10\.1\.2\.3/);
    expect(fs.statSync(path.join(out, 'svr.key')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(out, 'agent.yaml')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(out, 'ca.cert')).mode & 0o777).toBe(0o644);
    expect(fs.readFileSync(path.join(out, 'agent.yaml'), 'utf8')).toContain('url: http://10.1.2.3:8080');
    const list = JSON.parse((await rps(['machines', '--json'], env)).stdout) as {
      machines: Array<{ id: string }>;
    };
    expect(list.machines.map((x) => x.id)).toEqual(['cli-m']);
    const certs = await rps(['ca', 'list'], env);
    expect(certs.stdout).toMatch(/server\s+cli-m\s+10\.1\.2\.3/);
    const issued = await rps(
      ['ca', 'issue', '--kind', 'client', '--cn', 'ivis-core', '--out', path.join(tmp, 'ivis'), '--json'],
      env,
    );
    expect(issued.code).toBe(0);
    const serial = (
      JSON.parse(issued.stdout.slice(issued.stdout.indexOf('{'))) as { info: { serial: string } }
    ).info.serial;
    expect(fs.statSync(path.join(tmp, 'ivis', 'key.pem')).mode & 0o777).toBe(0o600);
    expect((await rps(['ca', 'revoke', serial], env)).stdout).toMatch(/client\s+ivis-core\s+-\s+\S+\s+yes/);
    const rm = await rps(['machines', 'rm', 'cli-m'], env);
    expect(rm.code).toBe(0);
    expect(rm.stdout).toBe('cli-m: removed\n');
  });

  it('when allowed clients are managed through the CLI then they are added, listed and removed', async () => {
    const fp = 'CD:'.repeat(31) + 'CD';
    expect((await rps(['clients', 'add', 'ivis-b', '--fingerprint', fp], env)).stdout).toBe(
      'ivis-b: added\n',
    );
    expect((await rps(['clients'], env)).stdout).toContain(`ivis-b  ${fp}`);
    expect((await rps(['clients', 'rm', 'ivis-b'], env)).code).toBe(0);
    const again = await rps(['clients', 'rm', 'ivis-b'], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('client_not_found (404)');
  });

  it('when the command line, the token or the manager is wrong then the documented exit codes come back', async () => {
    const noToken = await rps(['peers'], { RPS_MANAGER_URL: m.url });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain('no token');
    expect((await rps(['bogus'], env)).code).toBe(2);
    expect((await rps(['runs', '--nope'], env)).code).toBe(2);
    const wrong = await rps(['peers', '--token', 'wrong-token-wrong-token'], { RPS_MANAGER_URL: m.url });
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain('forbidden (403)');
    const down = await rps(['peers', '--url', 'http://127.0.0.1:1'], env);
    expect(down.code).toBe(3);
    expect(down.stderr).toContain('cannot reach the manager');
    const missing = await rps(['run', '999999'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('run_not_found (404)');
    const bad = await rps(['runs', '--state', 'sleeping'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('invalid_request (400)');
  });
});
