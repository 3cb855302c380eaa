import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  closeRedis,
  createRedis,
  createRedisKeys,
  QUEUES,
  RunStore,
  runJobId,
  waitForRedis,
  type RedisKeys,
} from '@rps/common';
import {
  freePort,
  startRedisServer,
  testLogger,
  uniquePrefix,
  waitFor,
  type TestRedisServer,
  jobReachableTmpDir,
  TEST_PYTHON,
} from '@rps/common/testing';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { createService, type SchedulerService } from '../src/app';
import { schedulerConfig, startFakeIvis, type FakeIvis } from './helpers';

const AGENT_MAIN = path.resolve(__dirname, '../../peer-agent/dist/main.js');
// The agent is another package; the integration global setup builds every
// package (tsc -b), so a missing build is a failure, not a reason to skip.
beforeAll(() => {
  if (!fs.existsSync(AGENT_MAIN)) throw new Error(`${AGENT_MAIN} is missing: run npm run build`);
});

/** The agent's default heartbeat is 2 s; the timeout leaves room for a late one on a busy machine. */
const HEARTBEAT_TIMEOUT_MS = 4000;
const TICK_MS = 500;

const JOB_PY = `
import json, sys, time
data = json.loads(sys.stdin.readline())
print("started", flush=True)
time.sleep(float(data["params"]["seconds"]))
print("done", flush=True)
`;

function taskArchive(dir: string): Buffer {
  const src = path.join(dir, 'task');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'job.py'), JOB_PY);
  const out = path.join(dir, 'task.tar');
  execFileSync('tar', ['-cf', out, '-C', src, '.']);
  return fs.readFileSync(out);
}

describe('two real agents, one killed mid-run', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let keys: RedisKeys;
  let runs: RunStore;
  let runsQueue: Queue;
  let ivis: FakeIvis;
  let scheduler: SchedulerService;
  let dir: string;
  const agents = new Map<string, { child: ChildProcess; log: string[] }>();

  beforeAll(async () => {
    server = await startRedisServer();
    redis = createRedis({ url: server.url, role: 'worker', name: 'e2e', logger: testLogger() });
    await waitForRedis(redis);
    keys = createRedisKeys(uniquePrefix('e2e'));
    runs = new RunStore(redis, keys);
    runsQueue = new Queue(QUEUES.runs, { connection: redis, prefix: keys.bullPrefix });
    ivis = await startFakeIvis();
    dir = jobReachableTmpDir('rps-e2e-');
  });

  afterAll(async () => {
    for (const { child } of agents.values()) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
    }
    await scheduler?.stop();
    await runsQueue.close();
    await ivis.close();
    await closeRedis(redis);
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function startAgent(id: string): Promise<void> {
    const workDir = path.join(dir, id);
    fs.mkdirSync(workDir);
    const config = path.join(dir, `${id}.yaml`);
    const yaml = [
      `redis: { url: "${server.url}", prefix: "${keys.prefix}" }`,
      'log: { level: info }',
      'agent:',
      `  id: ${id}`,
      '  address: 127.0.0.1',
      '  capacity: 1',
      `  admin: { host: 127.0.0.1, port: ${await freePort()} }`,
      `  executor: { kind: builtin, workDir: "${workDir}", python: ${TEST_PYTHON}, subtypes: { __default__: { libs: [] } }, allowSameUser: true }`,
      '  ivis:',
      `    trustedUrlBase: ${ivis.url}`,
      '    sandboxUrlBase: http://127.0.0.1:9',
      '    es: { host: 127.0.0.1, port: 9 }',
    ].join('\n');
    fs.writeFileSync(config, `${yaml}\n`);
    const child = spawn(process.execPath, [AGENT_MAIN], {
      env: { ...process.env, RPS_CONFIG: config },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log: string[] = [];
    const keep = (d: Buffer) => log.push(...d.toString().split('\n').filter(Boolean).slice(-50));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    agents.set(id, { child, log });
  }

  async function submit(runId: number, seconds: number, archive: Buffer): Promise<void> {
    const body = {
      params: { seconds },
      entities: { signalSets: {}, signals: {} },
      owned: { signalSets: {} },
      type: 'python',
      codeArchive: archive.toJSON(),
      accessToken: null,
      state: null,
      jobId: 5,
      runId,
      taskId: 7,
    };
    // The gateway's half of the contract: the record, then one job per execution.
    const { execution } = await runs.submit(runId, Buffer.from(JSON.stringify(body)), {
      taskId: 7,
      jobId: 5,
    });
    await runsQueue.add('run', { runId, execution }, { jobId: runJobId(runId, execution) });
  }

  interface StatusBody {
    runId: number;
    status: { status: number };
    output?: string;
  }
  const statuses = (runId: number) =>
    ivis.received
      .filter((r) => r.path === '/rest/remote/status' && r.body.runId === runId)
      .map((r) => ({ ...(r.body as unknown as StatusBody), arrivedAt: r.at }));

  it('when an agent is SIGKILLed while running a task then its run fails naming it within timeout + one tick and the other run completes', async () => {
    await startAgent('peer-e1');
    await startAgent('peer-e2');
    scheduler = createService({
      config: schedulerConfig({
        heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
        tickMs: TICK_MS,
        trustedUrlBase: ivis.url,
      }),
      keys,
      redis,
      logger: testLogger(),
      registry: new Registry(),
    });
    await scheduler.start();
    await waitFor('both agents registered', async () => (await redis.zcard(keys.peers())) === 2, {
      timeoutMs: 20_000,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${[...agents.values()].map((a) => a.log.join('\n')).join('\n')}`);
    });

    const archive = taskArchive(dir);
    await submit(1, 6, archive);
    await submit(2, 6, archive);
    const { victim, survivor } = await waitFor(
      'both runs running, one per agent',
      async () => {
        const [a, b] = [await runs.get(1), await runs.get(2)];
        return a?.state === 'running' && b?.state === 'running'
          ? { victim: a.peerId, survivor: b.peerId }
          : null;
      },
      { timeoutMs: 30_000 },
    );
    expect(new Set([victim, survivor]).size).toBe(2);

    agents.get(victim)!.child.kill('SIGKILL');
    const killedAt = Date.now();

    await waitFor('RUN_FAIL of run 1', () => statuses(1).some((s) => s.status.status === 2), {
      timeoutMs: 15_000,
    });
    const failure = statuses(1).find((s) => s.status.status === 2)!;
    expect(failure.output).toContain(`peer ${victim} lost`);
    expect(failure.arrivedAt - killedAt).toBeLessThanOrEqual(HEARTBEAT_TIMEOUT_MS + TICK_MS + 1000);
    expect((await runs.get(1))?.state).toBe('lost');

    await waitFor('SUCCESS of run 2', () => statuses(2).some((s) => s.status.status === 0), {
      timeoutMs: 15_000,
    });
    expect((await runs.get(2))?.state).toBe('succeeded');
    expect(statuses(1).filter((s) => s.status.status === 2)).toHaveLength(1);
    expect(await redis.hget(keys.peer(survivor), 'state')).toBe('active');
  });
});
