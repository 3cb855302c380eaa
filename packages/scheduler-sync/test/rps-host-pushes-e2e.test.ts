import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import {
  closeRedis,
  createRedis,
  createRedisKeys,
  finalPushJobId,
  QUEUES,
  RunStore,
  runJobId,
  waitForRedis,
  type RedisKeys,
} from '@rps/common';
import {
  jobReachableTmpDir,
  TEST_PYTHON,
  createTestPki,
  freePort,
  startRedisServer,
  testLogger,
  uniquePrefix,
  waitFor,
  type TestPki,
  type TestRedisServer,
} from '@rps/common/testing';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

const ROOT = path.resolve(__dirname, '../../..');
const MAIN = {
  agent: path.join(ROOT, 'packages/peer-agent/dist/main.js'),
  forwarder: path.join(ROOT, 'packages/peer-forwarder/dist/main.js'),
  scheduler: path.join(ROOT, 'packages/scheduler-sync/dist/main.js'),
};
beforeAll(() => {
  for (const file of Object.values(MAIN)) {
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: run npm run build`);
  }
});

const JOB_PY = `
import json, sys, time
data = json.loads(sys.stdin.readline())
print("started", flush=True)
time.sleep(float(data["params"]["seconds"]))
print("done", flush=True)
`;

/** One request the TLS stand-in for IVIS-core accepted (it requires the pool's client certificate). */
interface Received {
  path: string;
  body: { runId?: number; status?: { status: number }; output?: string; type?: string };
}

// The RPS host delivers the pushes it originates with the operator contract's
// defaults (no scheduler.trustedUrlBase, no forwarder.allow): scheduler-sync
// derives the URL from forwarder.routes.trusted and the forwarder admits the
// host's own loopback traffic, so a lost run's RUN_FAIL reaches IVIS-core
// even when no agent is alive; and a final push an agent recorded but never
// queued (killed at once) is delivered by scheduler-sync alone.
describe('the RPS host delivers its own pushes, with no agent alive', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let keys: RedisKeys;
  let runs: RunStore;
  let runsQueue: Queue;
  let pki: TestPki;
  let ivis: https.Server;
  let dir: string;
  let trustedPort: number;
  const received: Received[] = [];
  const children = new Map<string, { child: ChildProcess; log: string[] }>();

  beforeAll(async () => {
    server = await startRedisServer();
    redis = createRedis({ url: server.url, role: 'worker', name: 'e2e', logger: testLogger() });
    await waitForRedis(redis);
    keys = createRedisKeys(uniquePrefix('host'));
    runs = new RunStore(redis, keys);
    runsQueue = new Queue(QUEUES.runs, { connection: redis, prefix: keys.bullPrefix });
    pki = createTestPki();
    ivis = https.createServer(
      { key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert, requestCert: true },
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          if (!(req.socket as unknown as { authorized: boolean }).authorized) {
            res.writeHead(403).end('{}');
            return;
          }
          received.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString() || '{}') });
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        });
      },
    );
    await new Promise<void>((resolve) => ivis.listen(0, '127.0.0.1', resolve));
    dir = jobReachableTmpDir('rps-host-');
    trustedPort = await freePort();
    // The operator contract's shape: no scheduler.trustedUrlBase, no forwarder.allow.
    const rpsConfig = {
      redis: { url: server.url, prefix: keys.prefix },
      log: { level: 'info' },
      forwarder: {
        admin: { host: '127.0.0.1', port: await freePort() },
        tls: pki.paths,
        routes: {
          trusted: {
            listen: { host: '0.0.0.0', port: trustedPort },
            upstream: `https://127.0.0.1:${(ivis.address() as AddressInfo).port}`,
          },
        },
      },
      scheduler: {
        admin: { host: '127.0.0.1', port: await freePort() },
        heartbeatTimeoutMs: 4000,
        tickMs: 500,
      },
    };
    const file = path.join(dir, 'rps.yaml');
    fs.writeFileSync(file, JSON.stringify(rpsConfig));
    start('forwarder', MAIN.forwarder, file);
    start('scheduler', MAIN.scheduler, file);
  });

  afterAll(async () => {
    for (const { child } of children.values()) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
    }
    await runsQueue.close();
    ivis.closeAllConnections();
    await new Promise((resolve) => ivis.close(resolve));
    await closeRedis(redis);
    await server.stop();
    pki.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function start(name: string, main: string, config: string, env: Record<string, string> = {}): ChildProcess {
    const child = spawn(process.execPath, [main], {
      env: { ...process.env, RPS_CONFIG: config, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log: string[] = [];
    const keep = (d: Buffer) => log.push(...d.toString().split('\n').filter(Boolean).slice(-50));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    children.set(name, { child, log });
    return child;
  }

  const logs = () => [...children].map(([name, c]) => `--- ${name}\n${c.log.join('\n')}`).join('\n');

  async function startAgent(id: string, address: string, env: Record<string, string> = {}) {
    const workDir = path.join(dir, id);
    fs.mkdirSync(workDir);
    const file = path.join(dir, `${id}.yaml`);
    fs.writeFileSync(
      file,
      JSON.stringify({
        redis: { url: server.url, prefix: keys.prefix },
        log: { level: 'info' },
        agent: {
          id,
          // Not the loopback address they connect from: the forwarder admits them (and the
          // scheduler) as RPS-host loopback traffic, not as registered peers.
          address,
          capacity: 1,
          admin: { host: '127.0.0.1', port: await freePort() },
          executor: {
            kind: 'builtin',
            workDir,
            python: TEST_PYTHON,
            allowSameUser: true, // a plain user's run: jobs as that user (root: as rps-job)
            subtypes: { __default__: { libs: [] } },
          },
          ivis: {
            trustedUrlBase: `http://127.0.0.1:${trustedPort}`,
            sandboxUrlBase: 'http://127.0.0.1:9',
            es: { host: '127.0.0.1', port: 9 },
          },
        },
      }),
    );
    return start(id, MAIN.agent, file, env);
  }

  async function submit(runId: number, seconds: number): Promise<void> {
    const src = path.join(dir, `task-${runId}`);
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'job.py'), JOB_PY);
    execFileSync('tar', ['-cf', `${src}.tar`, '-C', src, '.']);
    const body = {
      params: { seconds },
      entities: { signalSets: {}, signals: {} },
      owned: { signalSets: {} },
      type: 'python',
      codeArchive: fs.readFileSync(`${src}.tar`).toJSON(),
      accessToken: null,
      state: null,
      jobId: 5,
      runId,
      taskId: runId,
    };
    const { execution } = await runs.submit(runId, Buffer.from(JSON.stringify(body)), {
      taskId: runId,
      jobId: 5,
    });
    await runsQueue.add('run', { runId, execution }, { jobId: runJobId(runId, execution) });
  }

  const finals = (runId: number) =>
    received.filter(
      (r) => r.path === '/rest/remote/status' && r.body.runId === runId && r.body.status?.status !== 3,
    );

  it('when one agent is stopped and the other SIGKILLed mid-run then the lost run RUN_FAIL reaches IVIS-core through the forwarder', async () => {
    const a = await startAgent('peer-h1', '127.0.0.2');
    const b = await startAgent('peer-h2', '127.0.0.3');
    await waitFor('both agents registered', async () => (await redis.zcard(keys.peers())) === 2, {
      timeoutMs: 30_000,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs()}`);
    });
    await submit(1, 120);
    const running = await waitFor(
      'run 1 running',
      async () => {
        const record = await runs.get(1);
        return record?.state === 'running' ? record : null;
      },
      { timeoutMs: 30_000 },
    );
    const [victim, other] = running.peerId === 'peer-h1' ? [a, b] : [b, a];
    const stopped = new Promise((resolve) => other.once('exit', resolve));
    other.kill('SIGTERM');
    await stopped;
    victim.kill('SIGKILL');

    const failure = await waitFor('RUN_FAIL of run 1 at IVIS-core', () => finals(1)[0], {
      // heartbeatTimeoutMs (4 s) + a tick, on a shared machine.
      timeoutMs: 30_000,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs()}`);
    });
    expect(failure.body.status?.status).toBe(2);
    expect(failure.body.output).toMatch(new RegExp(`^peer ${running.peerId} lost`));
    await waitFor('fail emit after it', () =>
      received.some((r) => r.path === '/rest/remote/emit' && r.body.type === 'run/1/fail'),
    );
    expect(finals(1)).toHaveLength(1);
  }, 120_000);

  it('when an agent is killed right after recording its run ended and no agent comes back then scheduler-sync delivers the final status once', async () => {
    const agent = await startAgent('peer-h3', '127.0.0.4', { RPS_TEST_FAULT: 'kill-after-final-record' });
    await submit(2, 0);
    const exited = await new Promise((resolve) => agent.once('exit', (_code, signal) => resolve(signal)));
    expect(exited).toBe('SIGKILL');
    expect(await runs.get(2)).toMatchObject({ state: 'succeeded' });
    const final = await waitFor('SUCCESS of run 2 at IVIS-core', () => finals(2)[0], {
      // Due after twice agent.finalPushWaitMs (default 10 s), then the next drain tick.
      timeoutMs: 45_000,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs()}`);
    });
    expect(final.body.status?.status).toBe(0);
    await waitFor('success emit after it', () =>
      received.some((r) => r.path === '/rest/remote/emit' && r.body.type === 'run/2/success'),
    );
    expect(finals(2)).toHaveLength(1);
    expect(await redis.hexists(keys.pushOutbox(), finalPushJobId(2, 1))).toBe(0);
  }, 90_000);
});
