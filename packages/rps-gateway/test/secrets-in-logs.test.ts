import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import {
  jobReachableTmpDir,
  TEST_PYTHON,
  createTestPki,
  freePort,
  startRedisServer,
  uniquePrefix,
  waitFor,
  type TestPki,
  type TestRedisServer,
} from '@rps/common/testing';
import { call } from './gateway-harness';
import { serviceMain, startProcess, stopProcess, taskArchive } from './e2e-processes';

// Secrets never reach the logs (DESIGN.md, operator contract; issue 11): a
// full run through real processes (gateway, forwarder, two agents,
// scheduler-sync, all at debug level), with a Redis password in every URL, a
// run body carrying an access token that the job uses on the sandbox route
// (IVIS puts it in the first path segment; the job adds it as a query too) and
// that the agent emits as access_token_refresh (which IVIS-core refuses, so
// the failure path logs too). Every line every process printed is then searched.

interface Seen {
  path: string;
  body: { runId?: number; type?: string; status?: { status: number } };
}

/** IVIS-core's trusted and sandbox endpoints behind the forwarder: HTTPS that wants the pool's client certificate. */
async function startIvis(pki: TestPki) {
  const seen: Seen[] = [];
  let refuseTokenRefresh = 1;
  const server = https.createServer(
    {
      cert: pki.server.cert,
      key: pki.server.key,
      ca: pki.ca.cert,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        const body = (text.startsWith('{') ? JSON.parse(text) : {}) as Seen['body'];
        seen.push({ path: req.url ?? '', body });
        const refuse = body.type === 'access_token_refresh' && refuseTokenRefresh-- > 0;
        res.writeHead(refuse ? 500 : 200, { 'content-type': 'application/json' }).end('{}');
      });
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const JOB_PY = `
import json, sys, urllib.request
data = json.loads(sys.stdin.readline())
server = data["server"]
token = data["accessToken"]
urllib.request.urlopen(server["sandboxUrlBase"] + "/" + token + "/rest/files/job/file/1?access_token=" + token).read()
urllib.request.urlopen(server["trustedUrlBase"] + "/").read()
print("job done", flush=True)
`;

/** The base64 lines of a PEM body (each 64 characters but the last). */
function pemBodyLines(pem: string): string[] {
  return pem.split('\n').filter((line) => line.length >= 16 && !line.startsWith('-----'));
}

describe('secrets in the logs of a full run', () => {
  const password = `pw-${randomBytes(12).toString('hex')}`;
  // IVIS-core's tokens are 40 hex digits (crypto.randomBytes(20)).
  const accessToken = randomBytes(20).toString('hex');
  const logs = new Map<string, string[]>();
  const children = new Map<string, ChildProcess>();
  let redis: TestRedisServer;
  let pki: TestPki;
  let ivis: Awaited<ReturnType<typeof startIvis>>;
  let tmp: string;
  let gatewayPort: number;

  const start = (name: string, dir: string, config: Record<string, unknown>) => {
    const file = path.join(tmp, `${name}.yaml`);
    fs.writeFileSync(file, JSON.stringify(config));
    const lines: string[] = [];
    logs.set(name, lines);
    children.set(name, startProcess(serviceMain(dir), file, lines, { LOG_LEVEL: 'debug' }));
  };

  beforeAll(async () => {
    redis = await startRedisServer({ password });
    expect(redis.url).toContain(password);
    pki = createTestPki();
    ivis = await startIvis(pki);
    tmp = jobReachableTmpDir('rps-secrets-');
    const common = { redis: { url: redis.url, prefix: uniquePrefix('secrets') }, log: { level: 'debug' } };
    const admin = async () => ({ host: '127.0.0.1', port: await freePort() });
    const [trusted, sandbox, es] = [await freePort(), await freePort(), await freePort()];
    const forwarderBase = (port: number) => `http://127.0.0.1:${port}`;
    gatewayPort = await freePort();

    start('gateway', 'rps-gateway', {
      ...common,
      gateway: {
        listen: { host: '127.0.0.1', port: gatewayPort },
        admin: await admin(),
        tls: pki.paths,
        clients: [pki.clientIdentity],
      },
    });
    start('forwarder', 'peer-forwarder', {
      ...common,
      forwarder: {
        admin: await admin(),
        tls: pki.paths,
        routes: {
          trusted: { listen: { host: '127.0.0.1', port: trusted }, upstream: ivis.url },
          sandbox: { listen: { host: '127.0.0.1', port: sandbox }, upstream: ivis.url },
          es: { listen: { host: '127.0.0.1', port: es }, upstream: ivis.url },
        },
        allow: ['127.0.0.0/8'],
      },
    });
    start('scheduler', 'scheduler-sync', {
      ...common,
      scheduler: { admin: await admin(), tickMs: 500, trustedUrlBase: forwarderBase(trusted) },
    });
    for (const id of ['peer-1', 'peer-2']) {
      start(id, 'peer-agent', {
        ...common,
        agent: {
          id,
          address: '127.0.0.1',
          capacity: 1,
          admin: await admin(),
          executor: {
            kind: 'builtin',
            workDir: path.join(tmp, id),
            python: TEST_PYTHON,
            allowSameUser: true, // a plain user's run: jobs as that user (root: as rps-job)

            subtypes: { __default__: { libs: [] } },
          },
          ivis: {
            trustedUrlBase: forwarderBase(trusted),
            sandboxUrlBase: forwarderBase(sandbox),
            es: { host: '127.0.0.1', port: es },
          },
        },
      });
    }
    // Processes start slowly on a loaded 2-core machine.
    await waitFor(
      'the gateway to answer over mTLS',
      async () => (await call(pki, gatewayPort, '/rps/run/1')).status === 404,
      {
        timeoutMs: 30_000,
        intervalMs: 200,
      },
    );
  }, 60_000);

  afterAll(async () => {
    for (const child of children.values()) child.kill('SIGKILL');
    await ivis?.close();
    await redis?.stop();
    pki?.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('when a run with an access token goes through every process then no line holds a key, the token or the Redis password', async () => {
    const body = {
      params: {},
      entities: { signalSets: {}, signals: {} },
      owned: { signalSets: {} },
      type: 'python',
      codeArchive: { type: 'Buffer', data: taskArchive(JOB_PY) },
      accessToken,
      state: null,
      jobId: 5,
      runId: 42,
      taskId: 7,
    };
    const res = await call(pki, gatewayPort, '/rps/run/42', { method: 'POST', body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    // The final push comes after the job's own requests.
    await waitFor(
      'the success push, the job’s sandbox request and a delivered access_token_refresh',
      () =>
        ivis.seen.some((s) => s.body.runId === 42 && s.body.status?.status === 0) &&
        ivis.seen.some((s) => s.path.startsWith(`/${accessToken}/`)) &&
        ivis.seen.some((s) => s.body.type === 'access_token_refresh'),
      { timeoutMs: 45_000, intervalMs: 100 },
    );
    // Also a refused client: the guard's warn line names the certificate.
    const executor = pki.issue('IVIS-Executor');
    expect((await call(pki, gatewayPort, '/rps/run/43', { client: executor })).status).toBe(403);

    // Stop everything (shutdown lines count too, and the forwarder flushes its buffered log).
    await Promise.all([...children.values()].map((child) => stopProcess(child)));

    const secrets: Array<[string, string]> = [
      ['PRIVATE KEY', 'PRIVATE KEY'],
      ['the access token', accessToken],
      ['the Redis password', password],
      ...[pki.server, pki.client, pki.ca].flatMap((pair, i) =>
        pemBodyLines(pair.key).map((line, j): [string, string] => [`private key ${i} line ${j}`, line]),
      ),
    ];
    const found: string[] = [];
    for (const [name, lines] of logs) {
      const text = lines.join('');
      // Each process did log its part of the run (so the search had something to search).
      expect(text.split('\n').filter(Boolean).length).toBeGreaterThan(3);
      for (const [label, secret] of secrets) {
        for (const line of text.split('\n'))
          if (line.includes(secret)) found.push(`${name}: ${label}: ${line}`);
      }
    }
    expect(found).toEqual([]);
    const all = [...logs.values()].map((l) => l.join('')).join('');
    expect(all).toContain('"client":"ivis-core"');
    expect(all).toContain('client certificate not allowed');
  }, 90_000);
});
