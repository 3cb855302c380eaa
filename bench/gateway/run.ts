/**
 * Gateway benchmark: accepted runs per second over mTLS with keep-alive.
 *
 * Starts its own redis-server and the built gateway as a real process
 * (`packages/rps-gateway/dist/main.js` with a generated config), then drives
 * it with an undici Pool (16 keep-alive connections, client certificate) that
 * POSTs small valid run bodies, each under a fresh run id. Not part of the
 * test suite. Usage (after `npm run build`):
 *
 *   npx tsc -p bench/gateway && node bench/gateway/dist/run.js [--runs N] [--seconds S] [--connections C]
 *
 * Scenarios are separate functions, each on its own environment:
 * - accepted-runs: runs/s and latency of POST /rps/run/:id over mTLS;
 * - dispatch-latency: POST answered -> run started on an agent (the agent's
 *   `running` event on `{bench}:events:runs`), with two agents from
 *   `packages/peer-agent/dist/main.js`, a trivial cached task, and at most as
 *   many runs in flight as the pool has slots. `--dispatchRuns N` (default 300).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Pool } from 'undici';
import { dispatchLatency } from './dispatch';
import { createRedis, createRedisKeys, closeRedis, QUEUES, waitForRedis } from '@rps/common';
import {
  createTestPki,
  freePort,
  startRedisServer,
  testLogger,
  type TestPki,
  type TestRedisServer,
} from '@rps/common/testing';

interface BenchArgs {
  dispatchRuns: number;
  runs: number;
  seconds: number;
  connections: number;
  warmup: number;
}

function parseArgs(argv: string[]): BenchArgs {
  const args: BenchArgs = { dispatchRuns: 300, runs: 50_000, seconds: 20, connections: 16, warmup: 2_000 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]?.replace(/^--/, '') as keyof BenchArgs;
    const value = Number(argv[i + 1]);
    if (!(key in args) || !Number.isFinite(value) || value <= 0) throw new Error(`bad argument ${argv[i]}`);
    args[key] = value;
  }
  return args;
}

/** What every scenario gets: a running gateway and a way to reach it. */
export interface BenchEnv {
  redis: TestRedisServer;
  pki: TestPki;
  prefix: string;
  port: number;
  adminPort: number;
  gateway: ChildProcess;
}

const ROOT = path.resolve(__dirname, '../../..');

async function startEnv(): Promise<BenchEnv> {
  const redis = await startRedisServer();
  const pki = createTestPki();
  const [port, adminPort] = [await freePort(), await freePort()];
  const prefix = '{bench}';
  const configFile = pki.write(
    'bench.yaml',
    [
      `redis: { url: "${redis.url}", prefix: "${prefix}" }`,
      'log: { level: warn }',
      'gateway:',
      `  listen: { host: 127.0.0.1, port: ${port} }`,
      `  admin: { host: 127.0.0.1, port: ${adminPort} }`,
      `  tls: { cert: ${pki.paths.cert}, key: ${pki.paths.key}, ca: ${pki.paths.ca} }`,
      '  bodyLimit: 64mb',
      `  clients: [{ name: ivis-core, fingerprint256: "${pki.clientIdentity.fingerprint256}" }]`,
      '',
    ].join('\n'),
  );
  // e.g. BENCH_GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the gateway.
  const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const gateway = spawn(
    process.execPath,
    [...nodeArgs, path.join(ROOT, 'packages/rps-gateway/dist/main.js')],
    {
      env: { ...process.env, RPS_CONFIG: configFile },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  await waitReady(adminPort, gateway);
  return { redis, pki, prefix, port, adminPort, gateway };
}

async function waitReady(adminPort: number, gateway: ChildProcess): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (gateway.exitCode !== null) throw new Error(`gateway exited with ${gateway.exitCode}`);
    try {
      const res = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('gateway not ready within 15 s');
}

async function stopEnv(env: BenchEnv): Promise<void> {
  if (env.gateway.exitCode === null) {
    const exited = new Promise((r) => env.gateway.once('exit', r));
    env.gateway.kill('SIGTERM');
    await exited;
  }
  await env.redis.stop();
  env.pki.cleanup();
}

function runBody(runId: number): string {
  return JSON.stringify({
    params: {},
    entities: { signalSets: {}, signals: {} },
    owned: { signalSets: {} },
    type: 'python',
    codeArchive: { type: 'Buffer', data: [46, 47, 0, 0, 0, 0, 0, 0] },
    accessToken: 'tok',
    state: null,
    jobId: 5,
    runId,
    taskId: 7,
  });
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** POSTs fresh runs, `connections` in flight, until `runs` are done or `seconds` pass. */
async function acceptedRuns(env: BenchEnv, args: BenchArgs) {
  const pool = new Pool(`https://127.0.0.1:${env.port}`, {
    connections: args.connections,
    pipelining: 1,
    connect: { ca: env.pki.ca.cert, cert: env.pki.client.cert, key: env.pki.client.key },
  });
  let next = 1;
  const post = async (): Promise<number> => {
    const runId = next++;
    const started = process.hrtime.bigint();
    const res = await pool.request({
      path: `/rps/run/${runId}`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: runBody(runId),
    });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`run ${runId}: HTTP ${res.statusCode}`);
    return Number(process.hrtime.bigint() - started) / 1e6;
  };
  const drive = async (count: number, deadline: number, latencies: number[] | null) => {
    let issued = 0;
    const worker = async () => {
      while (issued < count && Date.now() < deadline) {
        issued++;
        const ms = await post();
        latencies?.push(ms);
      }
    };
    await Promise.all(Array.from({ length: args.connections }, worker));
  };
  await drive(args.warmup, Date.now() + 30_000, null);
  const latencies: number[] = [];
  const started = process.hrtime.bigint();
  await drive(args.runs, Date.now() + args.seconds * 1000, latencies);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await pool.close();
  const sorted = Float64Array.from(latencies).sort();
  return {
    runs: latencies.length,
    seconds: Number(seconds.toFixed(2)),
    runsPerSecond: Math.round(latencies.length / seconds),
    p50ms: Number(percentile(sorted, 50).toFixed(2)),
    p99ms: Number(percentile(sorted, 99).toFixed(2)),
    totalPosted: next - 1,
  };
}

/** Every accepted run must be recorded and queued exactly once. */
async function checkQueued(env: BenchEnv, expected: number): Promise<void> {
  const redis = createRedis({ url: env.redis.url, role: 'worker', name: 'bench', logger: testLogger() });
  await waitForRedis(redis);
  const keys = createRedisKeys(env.prefix);
  const queue = new Queue(QUEUES.runs, { connection: redis, prefix: keys.bullPrefix });
  const [runs, { waiting }] = await Promise.all([
    redis.zcard(keys.runIndex()),
    queue.getJobCounts('waiting'),
  ]);
  await queue.close();
  await closeRedis(redis);
  if (runs !== expected || waiting !== expected) {
    throw new Error(
      `expected ${expected} runs recorded and queued, found ${runs} records and ${waiting} jobs`,
    );
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(path.join(ROOT, 'packages/rps-gateway/dist/main.js'))) {
    throw new Error('build first: npm run build (or npx tsc -b packages/rps-gateway)');
  }
  const env = await startEnv();
  try {
    const result = await acceptedRuns(env, args);
    await checkQueued(env, result.totalPosted);
    console.log(JSON.stringify({ scenario: 'accepted-runs', connections: args.connections, ...result }));
  } finally {
    await stopEnv(env);
  }
  const dispatchEnv = await startEnv();
  try {
    const result = await dispatchLatency(dispatchEnv, args.dispatchRuns);
    console.log(JSON.stringify({ scenario: 'dispatch-latency', ...result }));
  } finally {
    await stopEnv(dispatchEnv);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
