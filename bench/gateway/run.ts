/**
 * Gateway benchmark (`npm run bench:gateway`, after `npm run build`; `--quick`
 * for a ~30 s pass). Not part of the test suite: it prints figures, and
 * ratios against references started in the same run, so a figure still
 * means something on a loaded machine.
 *
 * One redis-server (AOF on, `appendfsync everysec`) serves everything. Each
 * server runs as its own process, and all are driven by the same client
 * (undici Pool, 16 keep-alive connections, client certificate) with the same
 * ~21 kB run body (a 10 KiB tar as a JSON byte array):
 *
 * - accepted-runs: runs/s, p50, p99 of POST /rps/run/:id for the bare mTLS
 *   server (`reference.ts bare`), the naive durable server (`reference.ts
 *   durable`) and the gateway (`packages/rps-gateway/dist/main.js`), in
 *   interleaved rounds; ratios are the gateway's over each reference, the
 *   one to the naive durable server the median of the rounds' own ratios
 *   (the two run back to back in every round);
 * - large-body: 10 MB bodies (a ~2.7 MiB tar), two uploads at a time in a
 *   loop, first alone (a quarter of the time), then while small runs arrive
 *   at 200/s: latency of both, and the gateway's peak RSS growth against the
 *   bytes in flight (alone, and overall); then the same small runs alone on
 *   a gateway of their own (`smallAlone`), whose growth the mixed loop's
 *   less theirs is set against (`rssGrowthPerBodyByteInFlightLessSmallAlone`);
 * - dispatch-latency: POST answered -> the agent's `running` event, 2 agents
 *   x 4 slots, 50 runs/s, cached task (see dispatch.ts).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { dispatchLatency } from './dispatch';
import { envWords, processCpuMs, redisPid } from './proc';
import { createRedis, closeRedis, waitForRedis } from '@rps/common';
import { GATEWAY_NODE_FLAGS } from '@rps/rps-gateway/dist/gateway.constants';
import {
  createTestPki,
  freePort,
  startRedisServer,
  testLogger,
  type TestPki,
  type TestRedisServer,
} from '@rps/common/testing';

interface BenchArgs {
  quick: boolean;
  seconds: number;
  rounds: number;
  connections: number;
  largeSeconds: number;
  dispatchRuns: number;
  skip: Set<string>;
}

function parseArgs(argv: string[]): BenchArgs {
  const quick = argv.includes('--quick');
  const args: BenchArgs = {
    quick,
    seconds: quick ? 3 : 5,
    rounds: quick ? 2 : 4,
    connections: 16,
    largeSeconds: quick ? 6 : 20,
    dispatchRuns: quick ? 100 : 500,
    skip: new Set(),
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') continue;
    if (arg === '--skip') {
      for (const s of (argv[++i] ?? '').split(',')) args.skip.add(s);
      continue;
    }
    const key = arg.replace(/^--/, '') as
      'seconds' | 'rounds' | 'connections' | 'largeSeconds' | 'dispatchRuns';
    const value = Number(argv[++i]);
    if (!['seconds', 'rounds', 'connections', 'largeSeconds', 'dispatchRuns'].includes(key) || !(value > 0)) {
      throw new Error(`bad argument ${arg}`);
    }
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
// BENCH_GATEWAY_MAIN=<path of another build's dist/main.js> compares two builds in the same conditions.
const GATEWAY_MAIN = process.env.BENCH_GATEWAY_MAIN ?? path.join(ROOT, 'packages/rps-gateway/dist/main.js');
// The gateway is launched as in production, with GATEWAY_NODE_FLAGS; BENCH_GATEWAY_FLAGS
// replaces them (BENCH_GATEWAY_FLAGS= for V8's defaults).
const GATEWAY_FLAGS = envWords('BENCH_GATEWAY_FLAGS', GATEWAY_NODE_FLAGS.join(' '));

export async function startRedis(): Promise<TestRedisServer> {
  const redis = await startRedisServer({ appendonly: true });
  const admin = createRedis({ url: redis.url, role: 'worker', name: 'bench-admin', logger: testLogger() });
  await waitForRedis(admin);
  // The test helper fsyncs every write; production Redis (config/redis.conf) syncs once a second.
  await admin.config('SET', 'appendfsync', 'everysec');
  await closeRedis(admin);
  return redis;
}

export async function startGateway(
  redis: TestRedisServer,
  pki: TestPki,
  prefix = '{bench}',
): Promise<BenchEnv> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const configFile = pki.write(
    `bench-${port}.yaml`,
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
  // BENCH_GATEWAY_NODE_ARGS adds to GATEWAY_FLAGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the gateway.
  const nodeArgs = [...GATEWAY_FLAGS, ...envWords('BENCH_GATEWAY_NODE_ARGS')];
  const gateway = spawn(process.execPath, [...nodeArgs, GATEWAY_MAIN], {
    env: { ...process.env, RPS_CONFIG: configFile },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await waitReady(adminPort, gateway);
  return { redis, pki, prefix, port, adminPort, gateway };
}

async function waitReady(adminPort: number, gateway: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
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
  throw new Error('gateway not ready within 30 s');
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** A reference server (reference.ts) as its own process; resolves with its port once it listens. */
async function startReference(mode: 'bare' | 'durable', pki: TestPki, redisUrl: string) {
  const port = await freePort();
  // BENCH_REFERENCE_NODE_ARGS="--initial-old-space-size=128" gives the references the gateway's heap flags.
  const nodeArgs = envWords('BENCH_REFERENCE_NODE_ARGS');
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      path.join(__dirname, 'reference.js'),
      mode,
      String(port),
      pki.paths.cert,
      pki.paths.key,
      pki.paths.ca,
      redisUrl,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`reference ${mode} exited with ${code}`)));
  });
  return { port, child };
}

/** A task archive as IVIS-core sends it: `tar -cf` of a small task, padded by tar to `bytes` or more. */
export function taskTar(payloadBytes: number, random: boolean): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-bench-tar-'));
  fs.writeFileSync(path.join(dir, 'job.py'), 'import sys\nsys.stdin.readline()\n');
  if (payloadBytes > 0) {
    const data = random ? Buffer.alloc(payloadBytes) : Buffer.alloc(payloadBytes, 'x');
    if (random) for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    fs.writeFileSync(path.join(dir, 'data.bin'), data);
  }
  const tar = execFileSync('tar', ['-cf', '-', '-C', dir, '.'], { maxBuffer: 64 * 1024 ** 2 });
  fs.rmSync(dir, { recursive: true, force: true });
  return tar;
}

export function runBody(tar: Buffer, runId = 1): Buffer {
  return Buffer.from(
    JSON.stringify({
      params: {},
      entities: { signalSets: {}, signals: {} },
      owned: { signalSets: {} },
      type: 'python',
      codeArchive: { type: 'Buffer', data: [...tar] },
      accessToken: 'tok',
      state: null,
      jobId: 5,
      runId,
      taskId: 7,
    }),
  );
}

export function clientPool(pki: TestPki, port: number, connections: number): Pool {
  return new Pool(`https://127.0.0.1:${port}`, {
    connections,
    pipelining: 1,
    bodyTimeout: 60_000,
    headersTimeout: 60_000,
    connect: { ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key },
  });
}

let nextRunId = 1;
/** Answers other than 200, by status: counted and printed, never thrown (a loaded machine may 503 a 10 MB body). */
const refusals = new Map<string, number>();

/** One POST; its latency in ms, or null when it was not a 200 (counted in `refusals` under `label`). */
async function post(pool: Pool, body: Buffer, label = 'run'): Promise<number | null> {
  const runId = nextRunId++;
  const started = performance.now();
  const res = await pool.request({
    path: `/rps/run/${runId}`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  await res.body.dump();
  if (res.statusCode !== 200) {
    const key = `${label} ${res.statusCode}`;
    refusals.set(key, (refusals.get(key) ?? 0) + 1);
    return null;
  }
  return performance.now() - started;
}

function takeRefusals(): Record<string, number> {
  const all = Object.fromEntries(refusals);
  refusals.clear();
  return all;
}

function summary(latencies: number[], seconds: number) {
  const sorted = Float64Array.from(latencies).sort();
  const at = (p: number) =>
    Number((sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN).toFixed(2));
  return {
    runs: sorted.length,
    runsPerSecond: Math.round(sorted.length / seconds),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: at(1),
  };
}

/** CPU time (user + system, all threads) a process has used so far, in ms. */
export function cpuMs(pid: number): number {
  return processCpuMs(pid).own;
}

/** The gateway's mean batch size per group-committed step, from its metrics. */
async function meanBatchSizes(adminPort: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const of = (what: string, step: string) =>
    Number(
      new RegExp(`rps_gateway_batch_size_${what}\\{[^}]*step="${step}"[^}]*\\} ([\\d.]+)`).exec(text)?.[1],
    );
  return Object.fromEntries(
    ['submit', 'acknowledge'].map((step) => [step, Number((of('sum', step) / of('count', step)).toFixed(1))]),
  );
}

/**
 * Rewrites the AOF and waits for the rewrite to end, so every round starts
 * alike: the previous round's writes (320 MB from the naive durable server in
 * 12 s) would otherwise trigger a background rewrite that competes with the
 * next round for the cores. A round that writes enough to trigger its own
 * rewrite still pays for it, as a server in production would.
 */
export async function settleAof(url: string): Promise<void> {
  const admin = createRedis({ url, role: 'worker', name: 'bench-aof', logger: testLogger() });
  const rewriting = async () =>
    /aof_rewrite_in_progress:1|aof_rewrite_scheduled:1/.test(await admin.info('persistence'));
  const idle = async () => {
    const deadline = Date.now() + 120_000;
    while (await rewriting()) {
      if (Date.now() > deadline) throw new Error('AOF rewrite still running after 120 s');
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    await waitForRedis(admin);
    await idle();
    await admin.bgrewriteaof();
    await idle();
  } finally {
    await closeRedis(admin);
  }
}

/**
 * Closed loop: `connections` POSTs in flight for `seconds`, after a short
 * warm-up. Besides latency, the CPU time the server's process and Redis
 * spent per accepted run: what a run costs, which holds on a busy machine
 * better than runs/s does.
 */
async function closedLoop(
  pki: TestPki,
  port: number,
  body: Buffer,
  args: BenchArgs,
  pids: { server: number; redis: number },
) {
  const pool = clientPool(pki, port, args.connections);
  const drive = async (seconds: number, latencies: number[] | null) => {
    const until = performance.now() + seconds * 1000;
    const worker = async () => {
      while (performance.now() < until) {
        const ms = await post(pool, body);
        if (ms !== null) latencies?.push(ms);
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: args.connections }, worker));
    return (performance.now() - started) / 1000;
  };
  await drive(1, null);
  takeRefusals();
  const latencies: number[] = [];
  const before = { server: cpuMs(pids.server), redis: cpuMs(pids.redis) };
  const seconds = await drive(args.seconds, latencies);
  const perRun = (ms: number) => Number(((ms * 1000) / Math.max(1, latencies.length)).toFixed(0));
  const cpu = {
    serverCpuUsPerRun: perRun(cpuMs(pids.server) - before.server),
    redisCpuUsPerRun: perRun(cpuMs(pids.redis) - before.redis),
  };
  await pool.close();
  return { ...summary(latencies, seconds), ...cpu, refused: takeRefusals() };
}

async function acceptedRuns(redis: TestRedisServer, pki: TestPki, args: BenchArgs) {
  const tar = taskTar(0, false); // one small file: tar pads it to 10 KiB
  const body = runBody(tar);
  const env = await startGateway(redis, pki);
  const bare = await startReference('bare', pki, redis.url);
  const durable = await startReference('durable', pki, redis.url);
  const servers = {
    bare: { port: bare.port, pid: bare.child.pid! },
    durable: { port: durable.port, pid: durable.child.pid! },
    gateway: { port: env.port, pid: env.gateway.pid! },
  };
  const redisProcess = await redisPid(redis.url);
  const results: Record<string, Array<Awaited<ReturnType<typeof closedLoop>>>> = {
    bare: [],
    durable: [],
    gateway: [],
  };
  let batches: Record<string, number> = {};
  try {
    for (let round = 0; round < args.rounds; round++) {
      // Odd rounds run the servers in reverse order, so none always follows the same one.
      const order = Object.entries(servers);
      if (round % 2 === 1) order.reverse();
      for (const [name, { port, pid }] of order) {
        await settleAof(redis.url);
        results[name]!.push(await closedLoop(pki, port, body, args, { server: pid, redis: redisProcess }));
      }
    }
    batches = await meanBatchSizes(env.adminPort);
  } finally {
    await Promise.all([stop(bare.child), stop(durable.child), stop(env.gateway)]);
  }
  // Each server's round of median runs/s (the lower middle one of an even count).
  const median = (name: string) =>
    [...results[name]!].sort((x, y) => x.runsPerSecond - y.runsPerSecond)[(results[name]!.length - 1) >> 1]!;
  const [b, d, g] = [median('bare'), median('durable'), median('gateway')];
  const ratio = (x: number, y: number) => Number((x / y).toFixed(2));
  // The gateway's runs/s over the naive durable server's in the same round: the two run back
  // to back in every round, so a ratio compares seconds of the same machine, however it drifts.
  const paired = results.gateway!.map((r, i) => ratio(r.runsPerSecond, results.durable![i]!.runsPerSecond));
  const pairedMedian = [...paired].sort((x, y) => x - y);
  const mid = pairedMedian.length >> 1;
  const medianRatio =
    pairedMedian.length % 2 === 1 ? pairedMedian[mid]! : (pairedMedian[mid - 1]! + pairedMedian[mid]!) / 2;
  return {
    bodyBytes: body.length,
    tarBytes: tar.length,
    connections: args.connections,
    seconds: args.seconds,
    rounds: args.rounds,
    bareMtls: b,
    naiveDurable: d,
    gateway: g,
    perRound: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.map((r) => r.runsPerSecond)])),
    gatewayVsNaiveDurable: Number(medianRatio.toFixed(2)),
    gatewayVsNaiveDurablePerRound: paired,
    // The estimator before 2026-12-04: each server's best round, whichever rounds those were.
    gatewayVsNaiveDurableBestRounds: ratio(
      Math.max(...results.gateway!.map((r) => r.runsPerSecond)),
      Math.max(...results.durable!.map((r) => r.runsPerSecond)),
    ),
    // Runs per Redis script call of the gateway's group commits, over all its rounds.
    gatewayMeanBatch: batches,
    // CPU per run, the naive durable server's over the gateway's (above 1: the gateway costs less).
    cpuPerRunNaiveOverGateway: {
      server: ratio(d.serverCpuUsPerRun, g.serverCpuUsPerRun),
      redis: ratio(d.redisCpuUsPerRun, g.redisCpuUsPerRun),
      both: ratio(d.serverCpuUsPerRun + d.redisCpuUsPerRun, g.serverCpuUsPerRun + g.redisCpuUsPerRun),
    },
    gatewayVsBare: ratio(g.runsPerSecond, b.runsPerSecond),
    naiveDurableVsBare: ratio(d.runsPerSecond, b.runsPerSecond),
  };
}

function rssKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
}

/** Small runs offered at 200/s until `until`, each answer's latency pushed to `latencies`. */
async function smallRuns(pool: Pool, body: Buffer, until: number, latencies: number[]): Promise<void> {
  const posts: Array<Promise<void>> = [];
  const intervalMs = 1000 / 200;
  let due = performance.now();
  while (performance.now() < until) {
    posts.push(post(pool, body, 'small').then((ms) => void (ms !== null && latencies.push(ms))));
    due += intervalMs;
    await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
  }
  await Promise.all(posts);
}

/**
 * The small runs of the large-body scenario alone, on a gateway of their
 * own (started the same way, warmed up the same way), for as long as the
 * mixed loop: how much the gateway's RSS grows without any upload, so the
 * mixed loop's growth can be split into what the small runs' garbage costs
 * and what is left for the uploads.
 */
async function smallRunsAlone(redis: TestRedisServer, pki: TestPki, args: BenchArgs) {
  const big = runBody(taskTar(2_700_000, true));
  const small = runBody(taskTar(0, false));
  const env = await startGateway(redis, pki, '{bench-small}');
  const pid = env.gateway.pid!;
  const bigPool = clientPool(pki, env.port, 1);
  const smallPool = clientPool(pki, env.port, 16);
  try {
    await post(bigPool, big, 'warm-up big');
    await post(smallPool, small, 'warm-up small');
    const baseKb = rssKb(pid, 'VmRSS');
    let peakKb = baseKb;
    const sampler = setInterval(() => (peakKb = Math.max(peakKb, rssKb(pid, 'VmRSS'))), 20);
    const latencies: number[] = [];
    const started = performance.now();
    await smallRuns(smallPool, small, started + args.largeSeconds * 1000, latencies);
    clearInterval(sampler);
    return {
      rssBaseMb: Math.round(baseKb / 1024),
      rssPeakGrowthKb: peakKb - baseKb,
      small: summary(latencies, (performance.now() - started) / 1000),
    };
  } finally {
    await Promise.all([bigPool.close(), smallPool.close()]);
    await stop(env.gateway);
  }
}

/** Two 10 MB uploads at a time in a loop, small runs at 200/s beside them. */
async function largeBodies(redis: TestRedisServer, pki: TestPki, args: BenchArgs) {
  const big = runBody(taskTar(2_700_000, true));
  const small = runBody(taskTar(0, false));
  const env = await startGateway(redis, pki, '{bench-large}');
  const pid = env.gateway.pid!;
  const bigPool = clientPool(pki, env.port, 2);
  const smallPool = clientPool(pki, env.port, 16);
  try {
    // Warm-up: one of each, so the baseline RSS includes the code paths.
    await post(bigPool, big, 'warm-up big');
    await post(smallPool, small, 'warm-up small');
    const baseKb = rssKb(pid, 'VmRSS');
    // First the two uploads alone for a quarter of the time: the RSS they cost without small runs beside them.
    const bigOnlyUntil = performance.now() + (args.largeSeconds * 1000) / 4;
    let bigOnlyPeakKb = baseKb;
    const bigOnlySampler = setInterval(
      () => (bigOnlyPeakKb = Math.max(bigOnlyPeakKb, rssKb(pid, 'VmRSS'))),
      20,
    );
    const bigOnlyLatencies: number[] = [];
    const bigOnlyCpuMs = processCpuMs(pid).own;
    const bigOnly = async () => {
      while (performance.now() < bigOnlyUntil) {
        const ms = await post(bigPool, big, 'big alone');
        if (ms !== null) bigOnlyLatencies.push(ms);
      }
    };
    await Promise.all([bigOnly(), bigOnly()]);
    clearInterval(bigOnlySampler);
    // The gateway's CPU per 10 MB body (TLS, validation, staging): what bounds
    // these latencies once its thread is busy, and steadier than they are.
    const gatewayCpuMsPerBigBody = Math.round(
      (processCpuMs(pid).own - bigOnlyCpuMs) / bigOnlyLatencies.length,
    );
    const until = performance.now() + args.largeSeconds * 1000;
    const bigLatencies: number[] = [];
    const smallLatencies: number[] = [];
    let peakKb = baseKb;
    const sampler = setInterval(() => (peakKb = Math.max(peakKb, rssKb(pid, 'VmRSS'))), 20);
    const uploader = async () => {
      while (performance.now() < until) {
        const ms = await post(bigPool, big, 'big');
        if (ms !== null) bigLatencies.push(ms);
      }
    };
    const started = performance.now();
    await Promise.all([uploader(), uploader(), smallRuns(smallPool, small, until, smallLatencies)]);
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    const inFlightKb = (2 * big.length) / 1024;
    return {
      bigBodyBytes: big.length,
      bigAlone: summary(bigOnlyLatencies, args.largeSeconds / 4),
      gatewayCpuMsPerBigBody,
      rssPeakGrowthBigAloneMb: Math.round((bigOnlyPeakKb - baseKb) / 1024),
      rssGrowthPerBodyByteInFlightBigAlone: Number(((bigOnlyPeakKb - baseKb) / inFlightKb).toFixed(2)),
      seconds: Number(seconds.toFixed(1)),
      big: summary(bigLatencies, seconds),
      small: summary(smallLatencies, seconds),
      refused: takeRefusals(),
      rssBaseMb: Math.round(baseKb / 1024),
      rssPeakGrowthMb: Math.round((peakKb - baseKb) / 1024),
      rssPeakGrowthKb: peakKb - baseKb,
      bodiesInFlightMb: Math.round(inFlightKb / 1024),
      rssGrowthPerBodyByteInFlight: Number(((peakKb - baseKb) / inFlightKb).toFixed(2)),
    };
  } finally {
    await Promise.all([bigPool.close(), smallPool.close()]);
    await stop(env.gateway);
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  for (const file of [GATEWAY_MAIN, path.join(__dirname, 'reference.js')]) {
    if (!fs.existsSync(file)) throw new Error(`${file} missing: npm run build && npx tsc -p bench/gateway`);
  }
  const started = Date.now();
  const redis = await startRedis();
  const pki = createTestPki();
  const load = () => os.loadavg().map((l) => Number(l.toFixed(1)));
  console.log(
    JSON.stringify({
      scenario: 'machine',
      cpus: os.cpus().length,
      loadavg: load(),
      node: process.version,
      gatewayFlags: GATEWAY_FLAGS.join(' '),
    }),
  );
  try {
    if (!args.skip.has('accepted')) {
      console.log(JSON.stringify({ scenario: 'accepted-runs', ...(await acceptedRuns(redis, pki, args)) }));
    }
    if (!args.skip.has('large')) {
      const large = await largeBodies(redis, pki, args);
      const { rssPeakGrowthKb: smallAloneKb, ...smallAlone } = await smallRunsAlone(redis, pki, args);
      const { rssPeakGrowthKb, ...figures } = large;
      console.log(
        JSON.stringify({
          scenario: 'large-body',
          ...figures,
          // The same small runs alone, on a gateway of their own, and the mixed loop's growth less theirs.
          smallAlone: { ...smallAlone, rssPeakGrowthMb: Math.round(smallAloneKb / 1024) },
          rssGrowthPerBodyByteInFlightLessSmallAlone: Number(
            ((rssPeakGrowthKb - smallAloneKb) / ((2 * large.bigBodyBytes) / 1024)).toFixed(2),
          ),
        }),
      );
    }
    if (!args.skip.has('dispatch')) {
      const env = await startGateway(redis, pki, '{bench-dispatch}');
      try {
        const result = await dispatchLatency(env, { runs: args.dispatchRuns, ratePerSecond: 50 });
        console.log(JSON.stringify({ scenario: 'dispatch-latency', ...result }));
      } finally {
        await stop(env.gateway);
      }
    }
  } finally {
    await redis.stop();
    pki.cleanup();
  }
  console.log(
    JSON.stringify({ scenario: 'done', seconds: Math.round((Date.now() - started) / 1000), loadavg: load() }),
  );
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
