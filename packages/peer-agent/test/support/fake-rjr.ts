import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What one run does on the fake job runner. The defaults make a run that
 * builds briefly, prints `output` and succeeds.
 */
export interface FakeRjrPlan {
  /** Time in the QUEUED state (the runner builds the task) before RUNNING. */
  buildMs?: number;
  /** Time RUNNING before the end; `Infinity` runs until stopped. */
  runMs?: number;
  /** Stdout, appended once the run is RUNNING. */
  output?: string;
  /** `build-fail`: RUN_FAIL without finished_at or error, and no status push (ivis-protocol.md 3.3). */
  outcome?: 'success' | 'fail' | 'build-fail';
  /** `lost`: the runner's final status push never reaches IVIS-core (it does not retry). */
  finalPush?: 'delivered' | 'lost';
  /** `succeed`: the job catches the runner's SIGINT and exits 0, so a stopped run ends in SUCCESS. */
  onStop?: 'fail' | 'succeed' | 'miss-first';
  /** Answers of GET /run/:id to give instead of the row (the last one repeats). */
  answers?: object[];
}

/** Behaviours of the real runner that the agent must survive, set per test. */
export interface FakeRjrQuirks {
  /** The worker creates the row this long after the POST was answered (GET is 404 meanwhile). */
  rowDelayMs: number;
  /** DELETE /run/:id takes this long; a row created meanwhile is lost to SQLITE_BUSY, the run goes on. */
  deleteMs: number;
  /** The runner reads the row back this long after its final write, and pushes only if it is still there. */
  pushReadMs: number;
}

interface Row {
  status: number;
  output: string;
  errMsg: string;
  finished_at?: string;
  started_at?: string;
}

interface Live {
  plan: FakeRjrPlan;
  phase: 'building' | 'running' | 'over';
  timer?: NodeJS.Timeout;
  polls: number;
  stops: number;
}

export interface FakeRjr {
  url: string;
  calls: string[];
  bodies: Map<number, Buffer>;
  rows: Map<number, Row>;
  /** Runs the runner ran although it recorded no row for them (the SQLITE_BUSY race). */
  rowless: number[];
  /** Whether a run is building, running or over on the runner. */
  phase(runId: number): Live['phase'] | undefined;
  quirks: FakeRjrQuirks;
  /** The plan of the next POST of `runId`. */
  plan(runId: number, plan: FakeRjrPlan): void;
  /** A row left by an earlier execution (its DELETE never came). */
  leaveRow(runId: number, row: Row): void;
  close(): Promise<void>;
}

/**
 * A stand-in for the IVIS remote job runner (BohdanQQ/ivis-remote-job-runner,
 * ivis-protocol.md 1.6, 2.6, 3.3), faithful to what it does wrong: it answers
 * the POST before its row exists, keeps a leftover row of the same id, builds
 * in QUEUED, loses rows to concurrent writes, pushes to IVIS-core itself
 * without started_at on RUNNING, once, and sends `run/<id>/stop` before the
 * final status of a stopped run.
 */
export async function startFakeRjr(ivisUrl: string): Promise<FakeRjr> {
  const live = new Map<number, Live>();
  const plans = new Map<number, FakeRjrPlan>();
  let deletesInFlight = 0;
  const push = (what: 'status' | 'emit', body: object): void => {
    // Fire and forget, as the runner does; `?from=rjr` tells tests who pushed.
    void fetch(`${ivisUrl}/rest/remote/${what}?from=rjr`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }).catch(() => undefined);
  };
  const update = (runId: number, change: Partial<Row>) => {
    const row = fake.rows.get(runId);
    if (row) Object.assign(row, change);
  };
  const end = (runId: number, run: Live, succeeded: boolean, stopped = false) => {
    run.phase = 'over';
    clearTimeout(run.timer);
    const finished_at = new Date().toISOString();
    if (stopped) update(runId, { errMsg: `${fake.rows.get(runId)?.errMsg ?? ''}Run Cancelled\n` });
    update(runId, { status: succeeded ? 0 : 2, finished_at });
    const row = fake.rows.get(runId);
    const output = row?.output ?? '';
    const errMsg = row?.errMsg ?? '';
    // A stopped run's stop event overtakes its final status (unordered pushes).
    if (stopped) push('emit', { type: `run/${runId}/stop` });
    setTimeout(() => {
      // "Could not push data to IVIS-core, run <id> does not exist!"
      if (run.plan.finalPush !== 'lost' && fake.rows.has(runId)) {
        push('status', {
          runId,
          status: { status: succeeded ? 0 : 2, started_at: row?.started_at, finished_at },
          output: succeeded ? output : `${errMsg}\n\nLog:\n${output}`,
        });
      }
      push(
        'emit',
        succeeded ? { type: `run/${runId}/success` } : { type: `run/${runId}/fail`, data: errMsg },
      );
    }, fake.quirks.pushReadMs);
  };
  const begin = (runId: number, run: Live) => {
    const { plan } = run;
    if (plan.outcome === 'build-fail') {
      run.phase = 'over';
      update(runId, { status: 2 });
      push('emit', {
        type: `run/${runId}/fail`,
        data: 'Remote Build Failed\nREMOTE BUILD ERRORS:\nno lib\n',
      });
      return;
    }
    run.phase = 'running';
    update(runId, { status: 3, started_at: new Date().toISOString(), output: plan.output ?? '' });
    push('status', { runId, status: { status: 3 } });
    const runMs = plan.runMs ?? 50;
    if (runMs !== Infinity) {
      run.timer = setTimeout(() => {
        if (plan.outcome === 'fail')
          update(runId, { errMsg: 'Run failed with code 1\n\nError log:\nboom\n' });
        end(runId, run, plan.outcome !== 'fail');
      }, runMs);
    }
  };
  const accept = (runId: number, body: Buffer) => {
    fake.bodies.set(runId, body);
    const run: Live = { plan: plans.get(runId) ?? {}, phase: 'building', polls: 0, stops: 0 };
    plans.delete(runId);
    live.set(runId, run);
    setTimeout(() => {
      // The worker's createRun: an existing row is kept as it is; one written
      // while the other process deletes is lost (SQLITE_BUSY), the run goes on.
      if (deletesInFlight > 0) fake.rowless.push(runId);
      else if (!fake.rows.has(runId)) fake.rows.set(runId, { status: 4, output: '', errMsg: '' });
      const buildMs = run.plan.buildMs ?? 50;
      if (buildMs !== Infinity) run.timer = setTimeout(() => begin(runId, run), buildMs);
    }, fake.quirks.rowDelayMs);
  };
  const stop = (runId: number) => {
    const run = live.get(runId);
    if (!run || run.phase === 'over') return; // "queueing error" in the runner's log
    if (run.phase === 'building') {
      run.phase = 'over';
      clearTimeout(run.timer);
      update(runId, { status: 2, errMsg: 'INFO: Run Cancelled\n' });
      push('status', { runId, status: { status: 2 }, output: 'INFO: Run Cancelled\n\n\nLog:\n' });
      push('emit', { type: `run/${runId}/stop` });
      return;
    }
    // The job was still starting and missed the SIGINT: the runner only emits the stop.
    if (run.plan.onStop === 'miss-first' && run.stops++ === 0) push('emit', { type: `run/${runId}/stop` });
    else if (run.plan.onStop === 'succeed') end(runId, run, true);
    else end(runId, run, false, true);
  };
  const handle = (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => {
    const match = /^\/(run|task)\/(\d+)(\/stop)?$/.exec(req.url ?? '');
    const id = Number(match?.[2]);
    const row = fake.rows.get(id);
    const isRun = match?.[1] === 'run';
    if (req.method === 'DELETE' && !isRun) return res.writeHead(200).end();
    if (req.method === 'POST' && isRun && !match?.[3]) {
      accept(id, body);
      return res.writeHead(200).end();
    }
    if (!row) return res.writeHead(404).end();
    if (req.method === 'GET') {
      const run = live.get(id);
      const answers = run?.plan.answers;
      const answer = answers
        ? answers[Math.min(run.polls++, answers.length - 1)]
        : { status: row.status, output: row.output, error: row.errMsg, finished_at: row.finished_at };
      return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    }
    if (req.method === 'POST' && match?.[3]) {
      stop(id);
      return res.writeHead(200).end();
    }
    if (req.method === 'DELETE') {
      deletesInFlight++;
      setTimeout(() => {
        deletesInFlight--;
        fake.rows.delete(id);
        res.writeHead(200).end();
      }, fake.quirks.deleteMs);
      return;
    }
    res.writeHead(404).end();
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      fake.calls.push(`${req.method} ${req.url}`);
      handle(req, Buffer.concat(chunks), res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const fake: FakeRjr = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls: [],
    bodies: new Map(),
    rows: new Map(),
    rowless: [],
    quirks: { rowDelayMs: 0, deleteMs: 0, pushReadMs: 0 },
    phase: (runId) => live.get(runId)?.phase,
    plan: (runId, plan) => plans.set(runId, plan),
    leaveRow: (runId, row) => fake.rows.set(runId, row),
    close: async () => {
      for (const run of live.values()) clearTimeout(run.timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return fake;
}
