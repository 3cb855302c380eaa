import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { QueueEvents } from 'bullmq';
import { Pool } from 'undici';
import {
  createRedis,
  createRedisKeys,
  closeRedis,
  QUEUES,
  runStateMessageSchema,
  waitForRedis,
} from '@rps/common';
import { freePort, testLogger } from '@rps/common/testing';
import { envWords, processCpuMs, redisPid, TICK_MS } from './proc';
import type { BenchEnv } from './run';

// BENCH_AGENT_MAIN: another build of the agent (e.g. an older commit's), to compare in the same conditions.
const AGENT_MAIN =
  process.env.BENCH_AGENT_MAIN ?? path.resolve(__dirname, '../../../packages/peer-agent/dist/main.js');
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

interface Agent {
  child: ChildProcess;
  adminPort: number;
}

async function startAgents(env: BenchEnv, sinkUrl: string, workRoot: string): Promise<Agent[]> {
  const agents: Agent[] = [];
  // BENCH_AGENT_NODE_ARGS: extra node flags for the agents (e.g. --cpu-prof --cpu-prof-dir=DIR).
  const nodeArgs = envWords('BENCH_AGENT_NODE_ARGS');
  for (let i = 1; i <= AGENTS; i++) {
    const adminPort = await freePort();
    const config = env.pki.write(
      `agent-${i}.yaml`,
      JSON.stringify({
        redis: { url: env.redis.url, prefix: env.prefix },
        log: { level: 'warn' },
        agent: {
          id: `bench-${i}`,
          address: '127.0.0.1',
          capacity: CAPACITY,
          admin: { host: '127.0.0.1', port: adminPort },
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
    const child = spawn(process.execPath, [...nodeArgs, AGENT_MAIN], {
      env: { ...process.env, RPS_CONFIG: config },
      stdio: 'inherit',
    });
    agents.push({ child, adminPort });
  }
  return agents;
}

/** Per phase of `rps_agent_run_phase_seconds` (peer-agent run-timings.ts), summed over the agents. */
type PhaseTotals = Map<string, { sum: number; count: number; buckets: Map<number, number> }>;

/** An agent's /metrics; tried a few times (a loaded machine can drop one request). */
async function metricsOf(port: number): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    } catch (err) {
      if (attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function phaseTotals(agents: Agent[]): Promise<PhaseTotals> {
  const totals: PhaseTotals = new Map();
  const pattern = /^rps_agent_run_phase_seconds_(sum|count|bucket)\{([^}]*)\} (\S+)$/;
  for (const agent of agents) {
    const text = await metricsOf(agent.adminPort);
    for (const line of text.split('\n')) {
      const m = pattern.exec(line);
      if (!m) continue;
      const labels = new Map([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
      const phase = labels.get('phase') ?? '';
      const entry = totals.get(phase) ?? { sum: 0, count: 0, buckets: new Map<number, number>() };
      totals.set(phase, entry);
      const value = Number(m[3]);
      if (m[1] === 'sum') entry.sum += value;
      else if (m[1] === 'count') entry.count += value;
      else {
        const le = labels.get('le') === '+Inf' ? Infinity : Number(labels.get('le'));
        entry.buckets.set(le, (entry.buckets.get(le) ?? 0) + value);
      }
    }
  }
  return totals;
}

/**
 * Where the runs' time went on the agents, between two readings: per phase
 * the mean and the histogram bucket bounds under which half and 99 % of the
 * runs fell (ms). The phases follow each other; their meaning is in
 * run-timings.ts (`queue` starts when the gateway added the job, before its 200).
 */
function phaseBreakdown(before: PhaseTotals, after: PhaseTotals) {
  const out: Record<string, { meanMs: number; p50UnderMs: number; p99UnderMs: number }> = {};
  for (const [phase, a] of after) {
    const b = before.get(phase);
    const count = a.count - (b?.count ?? 0);
    if (count <= 0) continue;
    const bound = (q: number) => {
      for (const le of [...a.buckets.keys()].sort((x, y) => x - y)) {
        if (a.buckets.get(le)! - (b?.buckets.get(le) ?? 0) >= q * count) return le * 1000;
      }
      return Infinity;
    };
    out[phase] = {
      meanMs: Math.round(((a.sum - (b?.sum ?? 0)) / count) * 10_000) / 10,
      p50UnderMs: bound(0.5),
      p99UnderMs: bound(0.99),
    };
  }
  return out;
}

/** Own CPU time (ms) of a process, and what it collected from children it reaped (0 once it is gone). */
function cpuOf(pid: number): { own: number; reaped: number } {
  try {
    return processCpuMs(pid);
  } catch {
    return { own: 0, reaped: 0 };
  }
}

/** A process's descendants alive now (/proc/<pid>/task/<tid>/children). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    let children = '';
    try {
      children = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const child of children.split(' ').filter(Boolean).map(Number))
      out.push(child, ...descendants(child));
  }
  return out;
}

/** Busy CPU time (ms) of the whole machine since boot, from /proc/stat (all but idle and iowait). */
function machineBusyMs(): number {
  const [, user, nice, system, , , irq, softirq, steal] = fs
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) * TICK_MS;
}

/**
 * CPU time (ms) so far of each part of the scenario: the agents' node
 * processes, their launchers and jobs (the live descendants, and what the
 * agents and launchers reaped), the gateway, Redis, this process and the
 * whole machine (which also counts whatever else runs on it).
 */
function cpuReading(agents: Agent[], gatewayPid: number, redisPid: number) {
  let agentNode = 0;
  let jobs = 0;
  for (const { child } of agents) {
    const own = cpuOf(child.pid ?? 0);
    agentNode += own.own;
    jobs += own.reaped;
    for (const pid of descendants(child.pid ?? 0)) {
      const c = cpuOf(pid);
      jobs += c.own + c.reaped;
    }
  }
  const self = process.cpuUsage();
  return {
    agentNode,
    jobs,
    gateway: cpuOf(gatewayPid).own,
    redis: cpuOf(redisPid).own,
    bench: (self.user + self.system) / 1000,
    machine: machineBusyMs(),
  };
}

function cpuPerRun(
  before: ReturnType<typeof cpuReading>,
  after: ReturnType<typeof cpuReading>,
  runs: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of Object.keys(after) as Array<keyof typeof after>) {
    out[key] = Math.round(((after[key] - before[key]) / runs) * 10) / 10;
  }
  return out;
}

function quantiles(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) =>
    Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! * 10) / 10;
  return { p50Ms: at(0.5), p90Ms: at(0.9), p99Ms: at(0.99), maxMs: at(1) };
}

/**
 * POST answered -> run started on an agent (its `running` event), per run,
 * with runs submitted at up to `ratePerSecond`, each only when a slot is free:
 * a run holds its slot from the POST until the agent's worker has completed
 * its job (BullMQ's `completed` event: final state recorded, final pushes
 * queued, slot given back), which is what decides whether the next job can
 * be taken at once. The first runs, until every agent has had one, build the
 * task's environment on each agent (a cached task) and are not counted. Also
 * printed: how late this process saw the `running` events (receipt against
 * the agent's own stamp, whole ms), the agents' own
 * phase breakdown (rps_agent_run_phase_seconds), and the CPU time per run of
 * each process of the scenario (agents, their launchers and jobs, gateway,
 * Redis, this driver) and of the whole machine.
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
  const keys = createRedisKeys(env.prefix);
  const started = new Map<number, () => void>();
  /** The agent each run started on. */
  const runningOn = new Map<number, string>();
  const lags: number[] = [];
  // Runs posted whose job is not completed yet.
  let busy = 0;
  let slotFreed: (() => void) | null = null;
  const completed = new Map<string, () => void>();
  await sub.subscribe(keys.runEvents());
  sub.on('message', (_channel: string, raw: string) => {
    const event = runStateMessageSchema.safeParse(JSON.parse(raw));
    if (!event.success || event.data.state !== 'running') return;
    runningOn.set(event.data.runId, event.data.peerId);
    const resolve = started.get(event.data.runId);
    if (!resolve) return;
    lags.push(Date.now() - event.data.at);
    resolve();
  });
  const events = new QueueEvents(QUEUES.runs, {
    connection: { url: env.redis.url },
    prefix: keys.bullPrefix,
  });
  const jobEnded = ({ jobId }: { jobId: string }) => {
    const done = completed.get(jobId);
    if (!done) return;
    completed.delete(jobId);
    done();
  };
  events.on('completed', jobEnded);
  events.on('failed', jobEnded);
  await events.waitUntilReady();
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
  /** Resolves once the run's job (first execution) is completed by its agent. */
  const jobDone = (runId: number) => new Promise<void>((resolve) => completed.set(`run-${runId}-1`, resolve));
  const slots = AGENTS * CAPACITY;
  try {
    // The task's environment is built once per agent, by runs that are not
    // counted: rounds of runs filling every slot, until every agent started one.
    let runId = 1;
    const warm = new Set<string>();
    for (let round = 1; warm.size < AGENTS; round++) {
      if (round > 5) throw new Error(`warm-up: ${warm.size} of ${AGENTS} agents took a run in 5 rounds`);
      const batch: Array<Promise<unknown>> = [];
      for (let i = 0; i < slots; i++, runId++) {
        const id = runId;
        batch.push(Promise.all([jobDone(id), one(id)]).then(() => warm.add(runningOn.get(id) ?? '')));
      }
      await Promise.all(batch);
    }
    const firstCounted = runId;
    lags.length = 0;
    const before = await phaseTotals(agents);
    const redisProcess = await redisPid(env.redis.url);
    const cpuBefore = cpuReading(agents, env.gateway.pid ?? 0, redisProcess);
    const latencies: number[] = [];
    const inFlight: Array<Promise<void>> = [];
    const intervalMs = 1000 / options.ratePerSecond;
    let due = performance.now();
    const began = performance.now();
    for (runId = firstCounted; runId < firstCounted + options.runs; runId++) {
      // Free slots only: the figure is dispatch, not waiting in the queue for a slot.
      while (busy >= slots) await new Promise<void>((r) => (slotFreed = r));
      busy++;
      const ended = jobDone(runId).then(() => {
        busy--;
        slotFreed?.();
      });
      inFlight.push(one(runId).then((ms) => void latencies.push(ms)));
      inFlight.push(ended);
      due += intervalMs;
      await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
    }
    await Promise.all(inFlight);
    const cpu = cpuPerRun(cpuBefore, cpuReading(agents, env.gateway.pid ?? 0, redisProcess), options.runs);
    const achievedPerSecond = Math.round((options.runs / (performance.now() - began)) * 1000);
    const phases = phaseBreakdown(before, await phaseTotals(agents));
    const lag = quantiles(lags);
    return {
      runs: latencies.length,
      agents: AGENTS,
      capacity: CAPACITY,
      ratePerSecond: options.ratePerSecond,
      // Below ratePerSecond when runs took longer than slots / rate: posting waited for free slots.
      achievedPerSecond,
      ...quantiles(latencies),
      eventLagP50Ms: lag.p50Ms,
      eventLagP99Ms: lag.p99Ms,
      phases,
      // CPU ms per counted run (10 ms ticks of /proc, summed over the counted window).
      cpuMsPerRun: cpu,
    };
  } finally {
    await pool.close();
    await events.close();
    await closeRedis(sub);
    for (const agent of agents) agent.child.kill('SIGTERM');
    await Promise.all(
      agents.map(
        ({ child }) => new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r))),
      ),
    );
    sink.close();
    fs.rmSync(workRoot, { recursive: true, force: true });
  }
}
