import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * IVIS-core's Node app behind its Apache (ivis-protocol.md 2.2-2.5): plain
 * HTTP, trusting `x-ivis-cert-serial` as the caller's identity the way
 * `extractCertSerial` does, mapping each push to the job's executor, keeping
 * a `job_runs` row per run with IVIS-core's state priorities, and deleting a
 * run on the executor (the gateway) before it answers a final status push.
 * The end-to-end tests put a real Apache httpd in front of it
 * (peer-forwarder/test/support/apache.ts), so the serial header comes from the
 * TLS client certificate the forwarder presented.
 */
export interface IvisCoreModel {
  /** The app's plain-HTTP URL (Apache proxies to it). */
  url: string;
  /** Every request as it reached the app, with the answer it got. */
  requests: ModelRequest[];
  /** `job_runs`: run id -> row. Only runs added with {@link IvisCoreModel.addRun} exist. */
  runs: Map<number, RunRow>;
  /** ES index `jobs`: job id -> stored state. */
  jobState: Map<number, unknown>;
  /** The DELETEs the app sent to the executor, with the answer's status. */
  deletes: Array<{ runId: number; status: number | string }>;
  /** IVIS-core created run `runId` of job `jobId` (the job's executor decides who may push for it). */
  addRun(runId: number, jobId: number): void;
  close(): Promise<void>;
}

export interface ModelRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown> | undefined;
  answer: { status: number; body: unknown };
}

export interface RunRow {
  jobId: number;
  /** RemoteRunState, or null before the first push (INITIALIZATION). */
  status: number | null;
  finishedAt: string | null;
  output: string;
  /** Each status the row took, in order. */
  history: number[];
}

export interface ModelOptions {
  /** job id -> decimal serial of its executor's certificate (`job_executors.cert_serial`). */
  jobExecutors: Map<number, string>;
  /** `DELETE <executor>/run/:id` (to the gateway's public port); answers the HTTP status. */
  deleteRun(runId: number): Promise<number>;
}

const SERIAL = /{ serialNumber (?<serialNumber>[0-9]+),/;
/** IVIS-core's priorities: higher wins, equal and different is a clash (2.3). */
const PRIORITY: Record<number, number> = { 0: 10000, 2: 10000, 3: 0, 4: -1000 };
const FINAL = new Set([0, 2]);

export async function startIvisCoreModel(options: ModelOptions): Promise<IvisCoreModel> {
  const requests: ModelRequest[] = [];
  const runs = new Map<number, RunRow>();
  const jobState = new Map<number, unknown>();
  const deletes: IvisCoreModel['deletes'] = [];
  let nextId = 1;

  /** 400 without a parseable header, 403 if it is not the job's executor, else null (go on). */
  const authorize = (headers: IncomingHttpHeaders, jobId: number | undefined): number | null => {
    const header = headers['x-ivis-cert-serial'];
    const match = typeof header === 'string' ? SERIAL.exec(header) : null;
    if (!match?.groups) return 400;
    if (jobId === undefined) return 400; // no executor found for the run (2.4)
    const expected = options.jobExecutors.get(jobId);
    if (expected === undefined) return 403;
    return BigInt(match.groups.serialNumber!).toString() === expected ? null : 403;
  };

  async function status(req: http.IncomingMessage, body: Record<string, unknown>) {
    const header = req.headers['x-ivis-cert-serial'];
    if (typeof header !== 'string' || !SERIAL.test(header)) return { status: 400, body: {} };
    const state = body.status as { status?: unknown; finished_at?: unknown } | undefined;
    if (typeof body.runId !== 'number' || typeof state !== 'object' || state === null)
      return { status: 400, body: {} };
    const code = state.status;
    if (typeof code !== 'number' || !(code in PRIORITY)) return { status: 400, body: {} };
    const row = runs.get(body.runId);
    if (!row) return { status: 403, body: {} }; // no executor found for the run
    const denied = authorize(req.headers, row.jobId);
    if (denied) return { status: denied, body: {} };
    const current = row.status === null ? -2000 : PRIORITY[row.status]!;
    let written = false;
    if (PRIORITY[code]! > current) {
      row.status = code;
      row.history.push(code);
      written = true;
    } else if (PRIORITY[code] === current && row.status !== code) {
      return { status: 500, body: {} }; // status clash
    }
    if (typeof state.finished_at === 'string') row.finishedAt = state.finished_at;
    if (typeof body.output === 'string' && body.output !== '') row.output += `\n${body.output}`;
    if (written && FINAL.has(code)) {
      // Synchronously, before the push is answered (2.3).
      const answer = await options.deleteRun(body.runId).catch((err: Error) => err.message);
      deletes.push({ runId: body.runId, status: answer });
      if (answer !== 200) return { status: 500, body: { message: `delete failed: ${answer}` } };
    }
    return { status: 200, body: {} };
  }

  function emit(req: http.IncomingMessage, body: Record<string, unknown>) {
    if (typeof body.type !== 'string') return { status: 400, body: {} };
    let jobId: number | undefined;
    if (body.type === 'access_token_refresh') {
      const data = body.data as { jobId?: unknown } | undefined;
      jobId = typeof data?.jobId === 'number' ? data.jobId : undefined;
    } else {
      const runId = /^run\/(\d+)\//.exec(body.type)?.[1];
      jobId = runId === undefined ? undefined : runs.get(Number(runId))?.jobId;
    }
    const denied = authorize(req.headers, jobId);
    return { status: denied ?? 200, body: {} };
  }

  function runRequest(req: http.IncomingMessage, body: Record<string, unknown>) {
    const payload = body.payload as Record<string, unknown> | undefined;
    if (typeof body.type !== 'number' || typeof payload !== 'object' || typeof payload.jobId !== 'number')
      return { status: 400, body: {} };
    const denied = authorize(req.headers, payload.jobId);
    if (denied) return { status: denied, body: {} };
    if (body.type === 1) {
      const request = payload.request as { state?: unknown } | undefined;
      if (!request?.state) return { status: 400, body: { error: 'state not specified', errStatus: 400 } };
      jobState.set(payload.jobId, request.state);
      return { status: 200, body: {} };
    }
    if (body.type === 0) {
      const sets = payload.signalSets as
        | { cid: string; signals?: Array<{ cid: string }> }
        | Array<{ cid: string; signals?: Array<{ cid: string }> }>
        | undefined;
      if (!sets) return { status: 400, body: { error: 'signalSets not specified', errStatus: 400 } };
      const created: Record<string, unknown> = {};
      for (const set of Array.isArray(sets) ? sets : [sets]) {
        const id = nextId++;
        const signals: Record<string, unknown> = {};
        for (const signal of set.signals ?? []) {
          const sid = nextId++;
          signals[signal.cid] = { id: sid, field: `s${sid}` };
        }
        created[set.cid] = { id, cid: set.cid, index: `signal_set_${id}`, signals };
      }
      return { status: 200, body: created };
    }
    return { status: 400, body: {} };
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        let body: Record<string, unknown> | undefined;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') as Record<string, unknown>;
        } catch {
          body = undefined;
        }
        const json = body && typeof body === 'object' ? body : {};
        let answer: { status: number; body: unknown };
        if (req.method === 'POST' && req.url === '/rest/remote/status') answer = await status(req, json);
        else if (req.method === 'POST' && req.url === '/rest/remote/emit') answer = emit(req, json);
        else if (req.method === 'POST' && req.url === '/rest/remote/runRequest')
          answer = runRequest(req, json);
        else answer = { status: 200, body: { name: 'IVIS-core model' } }; // the job helper's probe of GET /
        requests.push({ path: req.url ?? '', headers: req.headers, body, answer });
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    runs,
    jobState,
    deletes,
    addRun: (runId, jobId) =>
      runs.set(runId, { jobId, status: null, finishedAt: null, output: '', history: [] }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
