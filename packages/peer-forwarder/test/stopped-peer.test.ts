import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  createTestPki,
  freePort,
  startRedisServer,
  waitFor,
  type TestRedisServer,
  jobReachableTmpDir,
  TEST_PYTHON,
} from '@rps/common/testing';
import {
  send,
  startForwarder,
  startTlsUpstream,
  type TestForwarder,
  type TlsUpstream,
} from './support/harness';

// A real agent (peer-agent/dist/main.js) registered at a loopback alias: its
// address passes while it runs, is refused once it stopped cleanly (SIGTERM:
// state `stopped`, still in the registry), and passes again when it restarts.
const AGENT_MAIN = path.resolve(__dirname, '../../peer-agent/dist/main.js');
const PEER_ADDRESS = '127.0.0.31';
/** Events apply within milliseconds; 10 s covers an agent's start-up and a starved 2-core machine. */
const BUDGET_MS = 10_000;

describe('forwarder and a peer stopped cleanly', () => {
  const pki = createTestPki();
  let redisServer: TestRedisServer;
  let upstream: TlsUpstream;
  let fwd: TestForwarder;
  let tmp: string;
  let configFile: string;
  const children: ChildProcess[] = [];

  const startAgent = () => {
    const child = spawn(process.execPath, [AGENT_MAIN], {
      env: { ...process.env, RPS_CONFIG: configFile, LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    children.push(child);
    return child;
  };
  const statusFrom = async () =>
    (await send(fwd.ports.trusted!, { path: '/rest/remote/emit', localAddress: PEER_ADDRESS })).status;
  const allowed = () => fwd.service.accessList.check(PEER_ADDRESS).allowed;

  beforeAll(async () => {
    if (!fs.existsSync(AGENT_MAIN)) throw new Error(`${AGENT_MAIN} is missing: run npm run build`);
    redisServer = await startRedisServer();
    upstream = await startTlsUpstream(pki);
    // A long refresh period: the changes must arrive through the agent's events.
    fwd = await startForwarder({
      pki,
      redisUrl: redisServer.url,
      routes: { trusted: upstream.url },
      peerRefreshMs: 60_000,
    });
    tmp = jobReachableTmpDir('rps-fwd-stop-');
    configFile = path.join(tmp, 'agent.yaml');
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        redis: { url: redisServer.url, prefix: fwd.keys.prefix },
        log: { level: 'warn' },
        agent: {
          id: 'peer-stop',
          address: PEER_ADDRESS,
          capacity: 1,
          admin: { host: '127.0.0.1', port: await freePort() },
          executor: {
            kind: 'builtin',
            workDir: path.join(tmp, 'work'),
            python: TEST_PYTHON,
            allowSameUser: true,
          },
          ivis: {
            trustedUrlBase: upstream.url,
            sandboxUrlBase: upstream.url,
            es: { host: '127.0.0.1', port: 9 },
          },
        },
      }),
    );
  });

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await fwd.close();
    await upstream.close();
    await redisServer.stop();
    pki.cleanup();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('when the agent is stopped with SIGTERM then its address is refused until it starts again', async () => {
    const first = startAgent();
    await waitFor('agent allowed', allowed, { timeoutMs: BUDGET_MS, intervalMs: 20 });
    expect(await statusFrom()).toBe(200);

    const exited = new Promise((resolve) => first.once('exit', (code, signal) => resolve(code ?? signal)));
    first.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(await fwd.redis.hget(fwd.keys.peer('peer-stop'), 'state')).toBe('stopped');
    await waitFor('stopped peer refused', () => !allowed(), { timeoutMs: BUDGET_MS, intervalMs: 20 });
    expect(await statusFrom()).toBe(403);

    startAgent();
    await waitFor('restarted agent allowed', allowed, { timeoutMs: BUDGET_MS, intervalMs: 20 });
    expect(await statusFrom()).toBe(200);
  }, 60_000);
});
