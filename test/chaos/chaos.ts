/**
 * The chaos proof of DESIGN.md's run guarantees 1 and 2: a steady stream of
 * short runs through real processes (Redis with AOF and `appendfsync always`,
 * gateway, forwarder, scheduler-sync, N agents with the built-in executor,
 * an IVIS-core double behind real TLS) while every process kind is SIGKILLed
 * and restarted. Then it checks, from what IVIS-core received and from each
 * job's own side effect (a file the job creates once per execution):
 *
 * - every run answered 200 has exactly one final status at IVIS-core (an
 *   identical retried push is fine, a contradictory one is not);
 * - no run executed twice;
 * - no accepted run is left without a final status;
 * - no run executed whose POST was refused: answered with another status, or
 *   whose connection was refused (it never reached the gateway);
 * - a run whose POST got no answer at all (the gateway was killed while it
 *   held the request: "socket hang up", ECONNRESET) is *unanswered*: the
 *   gateway may have committed it before it died, and no server can tell the
 *   client so (the reply is what was lost). Such a run may run or not, but if
 *   it runs it is held to an accepted run's rules: once, with one final.
 *
 * Used by `chaos.test.ts` (bounded, in `npm test`) and by `cli.ts` (long runs by hand).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  createTestPki,
  jobReachableTmpDir,
  startRedisServer,
  uniquePrefix,
  waitFor,
  type TestRedisServer,
} from '@rps/common/testing';
import { gatewayClient } from './gateway-client';
import { isFinal, startIvisDouble, IVIS, type IvisDouble } from './ivis-double';
import { PoolProcess, writeLayout, type ProcessKind } from './pool';

export type KillKind = ProcessKind | 'redis';
export const KILL_KINDS: readonly KillKind[] = ['gateway', 'forwarder', 'scheduler', 'agent', 'redis'];

export interface ChaosOptions {
  runs: number;
  /** Submissions per second. */
  rate: number;
  agents: number;
  capacity: number;
  /** How many times each process kind is killed during the submissions. */
  kills: number;
  seed: number;
  /** How long each job sleeps (ms): short runs, so kills hit every phase. */
  jobMs: number;
  heartbeatTimeoutMs: number;
  /**
   * Runs submitted once the kills are over and every process is ready again: the pool must
   * serve after the storm, and the check has accepted runs even when a slow machine kept the
   * gateway down for the whole storm (a loaded CI host restarts a process in seconds).
   */
  tailRuns: number;
  /** How long to wait after the last submission for every accepted run's final status. */
  settleMs: number;
  /** Progress lines (by hand); the test passes a no-op. */
  progress: (line: string) => void;
}

export const DEFAULT_OPTIONS: ChaosOptions = {
  runs: 300,
  rate: 10,
  agents: 3,
  capacity: 2,
  kills: 2,
  seed: 1,
  jobMs: 200,
  heartbeatTimeoutMs: 3000,
  tailRuns: 10,
  settleMs: 120_000,
  progress: () => undefined,
};

/** A run as the chaos client saw it. */
interface Submitted {
  runId: number;
  /** HTTP status of the POST, or the client error (IVIS-core treats both alike: the run failed). */
  answer: number | string;
}

/**
 * What the client can know from a POST's answer. `unanswered` is a connection
 * lost after it was opened: the request may have been committed (see the top).
 */
export function outcomeOf(answer: number | string): 'accepted' | 'refused' | 'unanswered' {
  if (answer === 200) return 'accepted';
  if (typeof answer === 'number' || answer.includes('ECONNREFUSED')) return 'refused';
  return 'unanswered';
}

export interface ChaosReport {
  options: Omit<ChaosOptions, 'progress'>;
  sent: number;
  /** Of the runs sent after the kills: how many were accepted. */
  tailAccepted: number;
  accepted: number;
  /** Answers other than 200, by answer; unanswered ones included (see `outcomeOf`). */
  refused: Record<string, number>;
  /** Unanswered POSTs whose run executed anyway (allowed, see the top): how many. */
  unansweredExecuted: number;
  kills: Record<KillKind, number>;
  finals: { success: number; runFail: number };
  /** Each a list of run ids; all must be empty. */
  problems: {
    contradictoryFinals: number[];
    leftNonFinal: number[];
    executedTwice: number[];
    executedWithoutAccept: number[];
  };
  seconds: number;
}

/** mulberry32: a small seeded PRNG, so a failing seed can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The job: records its execution (one new file per execution), prints, sleeps, succeeds. */
function jobPy(markDir: string): string {
  return [
    'import json, os, sys, time',
    'data = json.loads(sys.stdin.readline())',
    'p = data["params"]',
    `fd = os.open(os.path.join(${JSON.stringify(markDir)}, "%d.%d" % (p["runId"], os.getpid())), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)`,
    'os.close(fd)',
    'print("run", p["runId"], "started", flush=True)',
    'time.sleep(p["jobMs"] / 1000.0)',
    'print("run", p["runId"], "done", flush=True)',
  ].join('\n');
}

function taskArchive(dir: string, markDir: string): number[] {
  const src = path.join(dir, 'task');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'job.py'), jobPy(markDir));
  return [...execFileSync('tar', ['-cf', '-', '-C', src, '.'])];
}

/** Runs one chaos scenario and returns its report (it never throws for a broken guarantee: the report says). */
export async function runChaos(partial: Partial<ChaosOptions> = {}): Promise<ChaosReport> {
  const options: ChaosOptions = { ...DEFAULT_OPTIONS, ...partial };
  const { progress, ...reported } = options;
  const started = Date.now();
  const random = prng(options.seed);
  const dir = jobReachableTmpDir('rps-chaos-');
  const markDir = path.join(dir, 'executions');
  // World-writable (sticky) so a job running as another user can still record itself.
  fs.mkdirSync(markDir, { mode: 0o1777 });
  fs.chmodSync(markDir, 0o1777);
  const pki = createTestPki();
  let redis: TestRedisServer | undefined;
  let ivis: IvisDouble | undefined;
  const processes: PoolProcess[] = [];
  let gatewayPort = 0;
  const gateway = gatewayClient(pki, '127.0.0.1', () => gatewayPort, { maxSockets: 16 });
  /** One IVIS-core call: its status (a client error rejects). */
  const call = (method: string, urlPath: string, body?: unknown) =>
    gateway.call(method, urlPath, body).then((answer) => answer.status);
  try {
    redis = await startRedisServer({ appendonly: true });
    ivis = await startIvisDouble(pki, (runId) => call('DELETE', `/rps/run/${runId}`));
    const layout = await writeLayout({
      dir,
      redis,
      prefix: uniquePrefix('chaos'),
      pki,
      ivisUrl: ivis.url,
      agents: options.agents,
      capacity: options.capacity,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs,
    });
    gatewayPort = layout.gatewayPort;
    const { adminPorts } = layout;
    const gateway = new PoolProcess('gateway', 'gateway', layout.rpsConfig, adminPorts.gateway!);
    const forwarder = new PoolProcess('forwarder', 'forwarder', layout.rpsConfig, adminPorts.forwarder!);
    const scheduler = new PoolProcess('scheduler', 'scheduler', layout.rpsConfig, adminPorts.scheduler!);
    const agents = layout.agentConfigs.map(
      (file, i) => new PoolProcess(`agent-${i + 1}`, 'agent', file, adminPorts[`agent-${i + 1}`]!),
    );
    processes.push(gateway, forwarder, scheduler, ...agents);
    for (const p of processes) p.start();
    for (const p of processes) await waitFor(`${p.name} ready`, () => p.ready(), { timeoutMs: 30_000 });
    progress(`pool up: gateway :${gatewayPort}, ${agents.length} agents, redis :${redis.port}`);

    const archive = taskArchive(dir, markDir);
    const baseId = 100_000 + Math.floor(random() * 800_000);
    const body = (runId: number) => ({
      params: { runId, jobMs: options.jobMs },
      entities: { signalSets: {}, signals: {} },
      owned: { signalSets: {} },
      type: 'python',
      codeArchive: { type: 'Buffer', data: archive },
      accessToken: null,
      state: null,
      jobId: 1,
      runId,
      taskId: 1,
    });

    // The kill plan: each kind `kills` times at seeded moments of the submission window.
    const windowMs = (options.runs / options.rate) * 1000;
    const plan: { at: number; kind: KillKind; downMs: number }[] = [];
    for (const kind of KILL_KINDS)
      for (let k = 0; k < options.kills; k++)
        plan.push({ at: (0.05 + 0.85 * random()) * windowMs, kind, downMs: 300 + random() * 1500 });
    plan.sort((a, b) => a.at - b.at);
    const kills = Object.fromEntries(KILL_KINDS.map((k) => [k, 0])) as Record<KillKind, number>;
    const killOne = async (step: (typeof plan)[number]) => {
      kills[step.kind] += 1;
      if (step.kind === 'redis') {
        progress(`kill redis (down ${Math.round(step.downMs)} ms)`);
        await redis!.kill();
        await sleep(step.downMs);
        await redis!.restart();
        return;
      }
      const pool =
        step.kind === 'agent' ? agents : processes.filter((p) => p.kind === step.kind && p.kind !== 'agent');
      const victim = pool[Math.floor(random() * pool.length)]!;
      progress(`kill ${victim.name} (down ${Math.round(step.downMs)} ms)`);
      await victim.kill();
      await sleep(step.downMs);
      victim.start();
    };
    const chaos = (async () => {
      const t0 = Date.now();
      for (const step of plan) {
        const wait = step.at - (Date.now() - t0);
        if (wait > 0) await sleep(wait);
        await killOne(step);
      }
    })();

    const submitted: Submitted[] = [];
    // Submits runs [from, from + count) at the configured rate; resolves when all are answered.
    const stream = async (from: number, count: number) => {
      const inFlight: Promise<void>[] = [];
      const t0 = Date.now();
      for (let i = 0; i < count; i++) {
        const due = t0 + (i * 1000) / options.rate;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        const runId = baseId + from + i;
        inFlight.push(
          call('POST', `/rps/run/${runId}`, body(runId)).then(
            (answer) => void submitted.push({ runId, answer }),
            (err: Error) => void submitted.push({ runId, answer: err.message }),
          ),
        );
        if ((i + 1) % 50 === 0) progress(`${from + i + 1}/${options.runs + options.tailRuns} submitted`);
      }
      await Promise.all(inFlight);
    };
    await stream(0, options.runs);
    await chaos;
    // Every process is up again (a kill's restart may still be starting), then the tail.
    for (const p of processes) await waitFor(`${p.name} ready`, () => p.ready(), { timeoutMs: 60_000 });
    await stream(options.runs, options.tailRuns);
    const accepted = submitted.filter((s) => s.answer === 200).map((s) => s.runId);
    progress(`${accepted.length}/${submitted.length} accepted; waiting for their final statuses`);
    const finalOf = (runId: number) => ivis!.statuses.get(runId)?.find((p) => isFinal(p.status));
    const unanswered = submitted.filter((s) => outcomeOf(s.answer) === 'unanswered').map((s) => s.runId);
    const ran = (runId: number) => fs.readdirSync(markDir).some((name) => name.startsWith(`${runId}.`));
    await waitFor(
      'every accepted run (and every unanswered one that ran) final at IVIS-core',
      () => accepted.every((id) => finalOf(id)) && unanswered.every((id) => !ran(id) || finalOf(id)),
      { timeoutMs: options.settleMs, intervalMs: 250 },
    ).catch(() => undefined);
    // Absence is what is checked next (no second execution, no late contradictory push), so
    // give late events a window: two heartbeat timeouts cover a lost-peer verdict in flight.
    await sleep(Math.min(5000, options.heartbeatTimeoutMs * 2));

    const executions = new Map<number, number>();
    for (const name of fs.readdirSync(markDir)) {
      const runId = Number(name.split('.')[0]);
      executions.set(runId, (executions.get(runId) ?? 0) + 1);
    }
    const refused: Record<string, number> = {};
    for (const s of submitted)
      if (s.answer !== 200) refused[String(s.answer)] = (refused[String(s.answer)] ?? 0) + 1;
    const refusedSet = new Set(
      submitted.filter((s) => outcomeOf(s.answer) === 'refused').map((s) => s.runId),
    );
    // Unanswered runs that executed were committed: they must end like accepted ones.
    const unansweredExecuted = submitted
      .filter((s) => outcomeOf(s.answer) === 'unanswered' && executions.has(s.runId))
      .map((s) => s.runId);
    const finals = { success: 0, runFail: 0 };
    const contradictoryFinals: number[] = [];
    const leftNonFinal: number[] = [];
    for (const runId of [...accepted, ...unansweredExecuted]) {
      const states = new Set(
        (ivis.statuses.get(runId) ?? []).filter((p) => isFinal(p.status)).map((p) => p.status),
      );
      if (states.size === 0) leftNonFinal.push(runId);
      if (states.size > 1) contradictoryFinals.push(runId);
      if (states.has(IVIS.SUCCESS)) finals.success += 1;
      else if (states.has(IVIS.RUN_FAIL)) finals.runFail += 1;
    }
    const report: ChaosReport = {
      options: reported,
      sent: submitted.length,
      tailAccepted: submitted.filter((x) => x.answer === 200 && x.runId >= baseId + options.runs).length,
      accepted: accepted.length,
      refused,
      unansweredExecuted: unansweredExecuted.length,
      kills,
      finals,
      problems: {
        contradictoryFinals,
        leftNonFinal,
        executedTwice: [...executions].filter(([, n]) => n > 1).map(([id]) => id),
        executedWithoutAccept: [...executions.keys()].filter((id) => refusedSet.has(id)),
      },
      seconds: Math.round((Date.now() - started) / 1000),
    };
    if (hasProblems(report)) {
      // The evidence for a broken guarantee: what each process said about the runs in question.
      const ids = new Set(Object.values(report.problems).flat().map(String));
      for (const p of processes) {
        const lines = p.log.filter((line) => [...ids].some((id) => line.includes(id)));
        if (lines.length > 0)
          progress(`--- ${p.name} on the runs with problems:\n${lines.slice(-40).join('\n')}`);
      }
    }
    return report;
  } finally {
    gateway.destroy();
    await Promise.all(processes.map((p) => p.stop()));
    await ivis?.close();
    await redis?.stop();
    pki.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function hasProblems(report: ChaosReport): boolean {
  return Object.values(report.problems).some((ids) => ids.length > 0);
}

/** The report as the table docs/reliability.md keeps. */
export function formatReport(report: ChaosReport): string {
  const p = report.problems;
  const rows: [string, string | number][] = [
    ['seed', report.options.seed],
    ['runs sent (of them after the kills)', `${report.sent} (${report.options.tailRuns})`],
    ['accepted after the kills', `${report.tailAccepted}/${report.options.tailRuns}`],
    ['accepted (200)', report.accepted],
    [
      'refused (answer: count)',
      Object.entries(report.refused)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ') || '0',
    ],
    ['kills', KILL_KINDS.map((k) => `${k} ${report.kills[k]}`).join(', ')],
    ['unanswered (gateway killed holding the POST) that ran', report.unansweredExecuted],
    ['finals at IVIS-core', `SUCCESS ${report.finals.success}, RUN_FAIL ${report.finals.runFail}`],
    ['accepted but never final (lost)', p.leftNonFinal.length],
    ['contradictory finals', p.contradictoryFinals.length],
    ['executed twice', p.executedTwice.length],
    ['executed although refused', p.executedWithoutAccept.length],
    ['wall time (s)', report.seconds],
  ];
  const lines = ['| what | figure |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)];
  for (const [name, ids] of Object.entries(p))
    if (ids.length > 0)
      lines.push(`${name}: ${ids.slice(0, 20).join(', ')}${ids.length > 20 ? ', ...' : ''}`);
  return lines.join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
