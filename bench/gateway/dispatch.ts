import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import {
  createRedis,
  createRedisKeys,
  closeRedis,
  isFinalState,
  runStateMessageSchema,
  waitForRedis,
} from '@rps/common';
import { freePort, testLogger } from '@rps/common/testing';
import type { BenchEnv } from './run';

const AGENT_MAIN = path.resolve(__dirname, '../../../packages/peer-agent/dist/main.js');
const AGENTS = 2;
const CAPACITY = 4;

/** IVIS-core's push endpoint for the agents: answers {} to everything. */
async function startSink(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

function archive(): number[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-bench-task-'));
  fs.writeFileSync(path.join(dir, 'job.py'), 'import sys\nsys.stdin.readline()\n');
  const tar = execFileSync('tar', ['-cf', '-', '-C', dir, '.']);
  fs.rmSync(dir, { recursive: true, force: true });
  return [...tar];
}

async function startAgents(env: BenchEnv, sinkUrl: string, workRoot: string): Promise<ChildProcess[]> {
  const agents: ChildProcess[] = [];
  for (let i = 1; i <= AGENTS; i++) {
    const config = env.pki.write(
      `agent-${i}.yaml`,
      JSON.stringify({
        redis: { url: env.redis.url, prefix: env.prefix },
        log: { level: 'warn' },
        agent: {
          id: `bench-${i}`,
          address: '127.0.0.1',
          capacity: CAPACITY,
          admin: { host: '127.0.0.1', port: await freePort() },
          executor: {
            kind: 'builtin',
            workDir: path.join(workRoot, `a${i}`),
            python: fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3',
            subtypes: { __default__: { libs: [] } },
            allowSameUser: true, // run by a plain user: jobs as that user (root: as rps-job)
          },
          ivis: { trustedUrlBase: sinkUrl, sandboxUrlBase: sinkUrl, es: { host: '127.0.0.1', port: 9 } },
        },
      }),
    );
    agents.push(
      spawn(process.execPath, [AGENT_MAIN], {
        env: { ...process.env, RPS_CONFIG: config },
        stdio: 'inherit',
      }),
    );
  }
  return agents;
}

/**
 * POST answered -> run started on an agent (its `running` event), per run,
 * with runs submitted at up to `ratePerSecond`, each only when a slot is free
 * (a run holds its slot from the POST to its final state). The first run of the task builds its environment and is not counted.
 */
export async function dispatchLatency(env: BenchEnv, options: { runs: number; ratePerSecond: number }) {
  if (!fs.existsSync(AGENT_MAIN)) throw new Error(`${AGENT_MAIN} missing: npm run build`);
  const sink = await startSink();
  const workRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-bench-agents-'));
  // Jobs run as the job user (agent.executor.runAs): it must pass through here to the agents' work dirs.
  fs.chmodSync(workRoot, 0o711);
  const agents = await startAgents(env, `http://127.0.0.1:${(sink.address() as AddressInfo).port}`, workRoot);
  const sub = createRedis({ url: env.redis.url, role: 'worker', name: 'bench-sub', logger: testLogger() });
  await waitForRedis(sub);
  const started = new Map<number, () => void>();
  // Runs posted and not ended yet: a slot is busy from the POST until the run's final state.
  let busy = 0;
  let slotFreed: (() => void) | null = null;
  await sub.subscribe(createRedisKeys(env.prefix).runEvents());
  sub.on('message', (_channel: string, raw: string) => {
    const event = runStateMessageSchema.safeParse(JSON.parse(raw));
    if (event.success && event.data.state === 'running') started.get(event.data.runId)?.();
    if (event.success && isFinalState(event.data.state) && event.data.runId > 1) {
      busy--;
      slotFreed?.();
    }
  });
  const pool = new Pool(`https://127.0.0.1:${env.port}`, {
    connections: 4,
    connect: { ca: env.pki.ca.cert, cert: env.pki.client.cert, key: env.pki.client.key },
  });
  const data = archive();
  const one = async (runId: number): Promise<number> => {
    const running = new Promise<void>((resolve) => started.set(runId, resolve));
    const body = JSON.stringify({
      params: {},
      entities: { signalSets: {}, signals: {} },
      owned: { signalSets: {} },
      type: 'python',
      codeArchive: { type: 'Buffer', data },
      accessToken: null,
      state: null,
      jobId: 1,
      runId,
      taskId: 1,
    });
    const res = await pool.request({
      path: `/rps/run/${runId}`,
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`POST run ${runId}: ${res.statusCode}`);
    const answered = performance.now();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      running,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`run ${runId} did not start in 60 s`)), 60_000);
      }),
    ]).finally(() => clearTimeout(timer));
    started.delete(runId);
    return performance.now() - answered;
  };
  try {
    await one(1); // builds the task environment once
    const latencies: number[] = [];
    const inFlight: Array<Promise<void>> = [];
    const intervalMs = 1000 / options.ratePerSecond;
    let due = performance.now();
    const slots = AGENTS * CAPACITY;
    const began = performance.now();
    for (let runId = 2; runId <= options.runs + 1; runId++) {
      // Free slots only: the figure is dispatch, not waiting in the queue for a slot.
      while (busy >= slots) await new Promise<void>((r) => (slotFreed = r));
      busy++;
      inFlight.push(one(runId).then((ms) => void latencies.push(ms)));
      due += intervalMs;
      await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
    }
    await Promise.all(inFlight);
    const achievedPerSecond = Math.round((options.runs / (performance.now() - began)) * 1000);
    latencies.sort((a, b) => a - b);
    const at = (p: number) =>
      Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]! * 10) / 10;
    return {
      runs: latencies.length,
      agents: AGENTS,
      capacity: CAPACITY,
      ratePerSecond: options.ratePerSecond,
      // Below ratePerSecond when runs took longer than slots / rate: posting waited for free slots.
      achievedPerSecond,
      p50Ms: at(0.5),
      p90Ms: at(0.9),
      p99Ms: at(0.99),
      maxMs: at(1),
    };
  } finally {
    await pool.close();
    await closeRedis(sub);
    for (const agent of agents) agent.kill('SIGTERM');
    await Promise.all(
      agents.map((a) => new Promise((r) => (a.exitCode !== null ? r(null) : a.once('exit', r)))),
    );
    sink.close();
    fs.rmSync(workRoot, { recursive: true, force: true });
  }
}
