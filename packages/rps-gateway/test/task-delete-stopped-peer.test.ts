import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import {
  createTestPki,
  freePort,
  startRedisServer,
  uniquePrefix,
  waitFor,
  jobReachableTmpDir,
  TEST_PYTHON,
} from '@rps/common/testing';
import type { TestPki, TestRedisServer } from '@rps/common/testing';
import { runBody, startFakeIvis, startProcess } from './e2e-processes';

// DESIGN.md guarantee 5 for a peer stopped for maintenance (issue 16): the
// gateway and an agent run as real processes from dist/; the agent is stopped
// with SIGTERM, IVIS-core deletes a task, the agent starts again with the same
// config and must remove that task's build, and only that one.

const ROOT = path.resolve(__dirname, '../../..');
const GATEWAY_MAIN = path.join(ROOT, 'packages/rps-gateway/dist/main.js');
const AGENT_MAIN = path.join(ROOT, 'packages/peer-agent/dist/main.js');

const SUCCEEDS = [
  'import json, sys',
  'data = json.loads(sys.stdin.readline())',
  'print("hello from job", data["context"]["jobId"], flush=True)',
  'print("done", flush=True)',
].join('\n');

describe('task deleted while its peer is stopped (SIGTERM)', () => {
  let redis: TestRedisServer;
  let pki: TestPki;
  let ivis: Awaited<ReturnType<typeof startFakeIvis>>;
  let gatewayPort: number;
  let agent: https.Agent;
  let agentConfig: string;
  let workDir: string;
  const children: ChildProcess[] = [];
  const logs: string[] = [];
  let tmp: string;

  const call = (method: string, urlPath: string, body?: unknown) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = https.request(
        {
          host: '127.0.0.1',
          port: gatewayPort,
          path: urlPath,
          method,
          agent,
          headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {},
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  const succeeded = (runId: number) =>
    ivis.received.some(
      (p) => p.path === '/rest/remote/status' && p.body.runId === runId && p.body.status?.status === 0,
    );
  const startAgent = () => {
    const child = startProcess(AGENT_MAIN, agentConfig, logs);
    children.push(child);
    return child;
  };
  const taskDir = (taskId: number) => path.join(workDir, 'tasks', String(taskId));

  beforeAll(async () => {
    for (const main of [GATEWAY_MAIN, AGENT_MAIN]) {
      if (!fs.existsSync(main)) throw new Error(`${main} is missing: run npm run build`);
    }
    redis = await startRedisServer();
    pki = createTestPki();
    ivis = await startFakeIvis();
    tmp = jobReachableTmpDir('rps-e2e-stop-');
    workDir = path.join(tmp, 'peer-1');
    gatewayPort = await freePort();
    const prefix = uniquePrefix('e2e');
    const common = { redis: { url: redis.url, prefix }, log: { level: 'info' } };
    const gatewayConfig = path.join(tmp, 'gateway.yaml');
    fs.writeFileSync(
      gatewayConfig,
      JSON.stringify({
        ...common,
        gateway: {
          listen: { host: '127.0.0.1', port: gatewayPort },
          admin: { host: '127.0.0.1', port: await freePort() },
          tls: pki.paths,
          clients: [pki.clientIdentity],
        },
      }),
    );
    children.push(startProcess(GATEWAY_MAIN, gatewayConfig, logs));
    agentConfig = path.join(tmp, 'peer-1.yaml');
    fs.writeFileSync(
      agentConfig,
      JSON.stringify({
        ...common,
        agent: {
          id: 'peer-1',
          address: '127.0.0.1',
          capacity: 2,
          admin: { host: '127.0.0.1', port: await freePort() },
          executor: {
            kind: 'builtin',
            workDir,
            python: TEST_PYTHON,
            allowSameUser: true, // a plain user's run: jobs as that user (root: as rps-job)

            subtypes: { __default__: { libs: [] } },
          },
          ivis: { trustedUrlBase: ivis.url, sandboxUrlBase: ivis.url, es: { host: '127.0.0.1', port: 9 } },
        },
      }),
    );
    agent = new https.Agent({ ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key, keepAlive: true });
    await waitFor(
      'gateway to answer over mTLS',
      async () => (await call('GET', '/rps/run/1')).status === 404,
      { timeoutMs: 20_000 },
    );
  }, 60_000);

  afterAll(async () => {
    if (process.env.E2E_LOGS) process.stderr.write(logs.join('').slice(-20_000));
    agent?.destroy();
    for (const child of children) child.kill('SIGKILL');
    await ivis?.close();
    await redis?.stop();
    pki?.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('when the agent starts again then the deleted task is gone from its work dir and the other build stays', async () => {
    const first = startAgent();
    for (const [runId, taskId] of [
      [1310, 131],
      [1320, 132],
    ] as const) {
      expect((await call('POST', `/rps/run/${runId}`, runBody(runId, taskId, SUCCEEDS))).status).toBe(200);
    }
    await waitFor('both runs succeeded', () => succeeded(1310) && succeeded(1320), { timeoutMs: 30_000 });
    expect(fs.existsSync(taskDir(131)) && fs.existsSync(taskDir(132))).toBe(true);

    const exited = new Promise((resolve) => first.once('exit', (code, signal) => resolve(code ?? signal)));
    first.kill('SIGTERM');
    expect(await exited).toBe(0);

    const deleted = await call('DELETE', '/rps/task/131');
    expect(deleted.status).toBe(200);
    // The stopped peer is still addressed: its durable stream holds the command.
    expect(JSON.parse(deleted.text)).toEqual({ peers: 1 });

    startAgent();
    // The agent carries the backlog out at start (stop-restart.test.ts pins the order); 20 s covers its start-up on a loaded machine.
    await waitFor('task 131 removed after the restart', () => !fs.existsSync(taskDir(131)), {
      timeoutMs: 20_000,
    });
    expect(fs.existsSync(taskDir(132))).toBe(true);
  }, 90_000);
});
