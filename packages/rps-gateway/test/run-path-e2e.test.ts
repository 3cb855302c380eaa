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

// The whole run path as IVIS-core sees it: the gateway and two agents run as
// real processes from dist/, IVIS-core's calls arrive over mTLS, and a test
// double of IVIS-core receives the pushes (ivis-protocol.md TV1, TV3, TV5, TV8).

const ROOT = path.resolve(__dirname, '../../..');
const GATEWAY_MAIN = path.join(ROOT, 'packages/rps-gateway/dist/main.js');
const AGENT_MAIN = path.join(ROOT, 'packages/peer-agent/dist/main.js');

const SUCCEEDS = [
  'import json, sys',
  'data = json.loads(sys.stdin.readline())',
  'print("hello from job", data["context"]["jobId"], flush=True)',
  'print("done", flush=True)',
].join('\n');
const FAILS =
  'import sys\nprint("about to fail", flush=True)\nsys.stderr.write("boom: bad input\\n")\nsys.exit(3)\n';
const SLEEPS = 'import sys, time\nsys.stdin.readline()\nprint("sleeping", flush=True)\ntime.sleep(60)\n';

describe('run path end to end: IVIS-core -> gateway (mTLS) -> agents -> IVIS-core', () => {
  let redis: TestRedisServer;
  let pki: TestPki;
  let ivis: Awaited<ReturnType<typeof startFakeIvis>>;
  let gatewayPort: number;
  let agent: https.Agent;
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
  const statusPushes = (runId: number) =>
    ivis.received.filter((p) => p.path === '/rest/remote/status' && p.body.runId === runId);
  const emits = (type: string) =>
    ivis.received.filter((p) => p.path === '/rest/remote/emit' && p.body.type === type);

  beforeAll(async () => {
    for (const main of [GATEWAY_MAIN, AGENT_MAIN]) {
      if (!fs.existsSync(main)) throw new Error(`${main} is missing: run npm run build`);
    }
    redis = await startRedisServer();
    pki = createTestPki();
    ivis = await startFakeIvis();
    tmp = jobReachableTmpDir('rps-e2e-');
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
    for (const id of ['peer-1', 'peer-2']) {
      const file = path.join(tmp, `${id}.yaml`);
      fs.writeFileSync(
        file,
        JSON.stringify({
          ...common,
          agent: {
            id,
            address: '127.0.0.1',
            capacity: 1,
            admin: { host: '127.0.0.1', port: await freePort() },
            executor: {
              kind: 'builtin',
              workDir: path.join(tmp, id),
              python: TEST_PYTHON,
              subtypes: { __default__: { libs: [] } },
              allowSameUser: true, // run by a plain user: jobs as that user (root: as rps-job)
            },
            ivis: { trustedUrlBase: ivis.url, sandboxUrlBase: ivis.url, es: { host: '127.0.0.1', port: 9 } },
          },
        }),
      );
      children.push(startProcess(AGENT_MAIN, file, logs));
    }
    agent = new https.Agent({ ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key, keepAlive: true });
    await waitFor(
      'gateway to answer over mTLS',
      async () => (await call('GET', '/rps/run/1')).status === 404,
      {
        timeoutMs: 20_000,
      },
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

  it('when IVIS-core submits a Python task then it gets RUNNING, then SUCCESS with the output', async () => {
    expect((await call('POST', '/rps/run/42', runBody(42, 7, SUCCEEDS))).status).toBe(200);
    // The success event follows the final status push (run-reporter.service.ts): wait for both.
    await waitFor(
      'final status push and success event of run 42',
      () => statusPushes(42).some((p) => p.body.status?.status === 0) && emits('run/42/success').length > 0,
      {
        timeoutMs: 30_000,
      },
    );
    const codes = statusPushes(42).map((p) => p.body.status?.status);
    expect(codes).toEqual([3, 0]);
    expect(statusPushes(42)[1]!.body.output).toBe('hello from job 5\ndone\n');
    expect(emits('run/42/success')).toHaveLength(1);
    const status = JSON.parse((await call('GET', '/rps/run/42')).text) as Record<string, unknown>;
    expect(status).toMatchObject({ status: 0, output: 'hello from job 5\ndone\n', error: '' });
    expect(status.finished_at).toEqual(expect.any(String));
    // IVIS-core deletes the run after the final push; it is gone, and deleting again is fine.
    expect((await call('DELETE', '/rps/run/42')).status).toBe(200);
    expect((await call('GET', '/rps/run/42')).status).toBe(404);
    expect((await call('DELETE', '/rps/run/42')).status).toBe(200);
  });

  it('when the task fails then IVIS-core gets RUN_FAIL with the error output', async () => {
    expect((await call('POST', '/rps/run/43', runBody(43, 8, FAILS))).status).toBe(200);
    await waitFor(
      'final status push of run 43',
      () => statusPushes(43).some((p) => p.body.status?.status === 2),
      {
        timeoutMs: 30_000,
      },
    );
    const final = statusPushes(43).find((p) => p.body.status?.status === 2)!;
    expect(final.body.output).toContain('Run failed with code 3');
    expect(final.body.output).toContain('boom: bad input');
    expect(final.body.output).toContain('about to fail');
  });

  it('when IVIS-core stops a running task and a queued one then both end in RUN_FAIL pushes', async () => {
    // Two slots in the pool: runs 44 and 45 take them, run 46 waits in the queue.
    for (const runId of [44, 45, 46]) {
      expect((await call('POST', `/rps/run/${runId}`, runBody(runId, 9, SLEEPS))).status).toBe(200);
    }
    await waitFor(
      'runs 44 and 45 running',
      () => statusPushes(44).length > 0 && statusPushes(45).length > 0,
      {
        timeoutMs: 30_000,
      },
    );
    expect(JSON.parse((await call('GET', '/rps/run/46')).text)).toMatchObject({ status: 4 });

    // IVIS-core's stop body is its options object (ivis-protocol.md 1.2).
    expect((await call('POST', '/rps/run/46/stop', { timeout: 2000 })).status).toBe(200);
    expect((await call('POST', '/rps/run/44/stop', { timeout: 2000 })).status).toBe(200);

    await waitFor('RUN_FAIL of runs 44 and 46', () =>
      [44, 46].every((id) => statusPushes(id).some((p) => p.body.status?.status === 2)),
    );
    expect(statusPushes(46).map((p) => p.body.status?.status)).toEqual([2]);
    expect(statusPushes(46)[0]!.body.output).toContain('Run Cancelled');
    await waitFor('stop emits', () => emits('run/44/stop').length === 1 && emits('run/46/stop').length === 1);
    expect(JSON.parse((await call('GET', '/rps/run/45')).text)).toMatchObject({ status: 3 });
    expect((await call('POST', '/rps/run/45/stop', {})).status).toBe(200);
  });
});
