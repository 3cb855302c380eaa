import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A status push body (2.3). */
export interface StatusBody {
  runId: number;
  status: { status: number; started_at?: string; finished_at?: string };
  output?: string;
}

/** Any body the fake receives: status, emit or runRequest fields. */
export interface PushBody {
  runId?: number;
  status?: StatusBody['status'];
  output?: string;
  type?: string | number;
  data?: unknown;
  payload?: unknown;
}

/** One request the fake IVIS-core received. */
export interface RecordedPush {
  path: string;
  body: PushBody;
  at: number;
}

/** A canned answer; undefined falls back to the default. */
export type Responder = (path: string, body: PushBody) => { status: number; body: unknown } | undefined;

/** A plain HTTP stand-in for IVIS-core's /rest/remote endpoints (the forwarder is not needed). */
export interface FakeIvis {
  url: string;
  pushes: RecordedPush[];
  respond: Responder | undefined;
  statuses(runId: number): StatusBody[];
  emits(type: string): PushBody[];
  close(): Promise<void>;
}

/** TV10: IVIS-core's answer to a create_signals request. */
export const CREATE_SIG_ANSWER = {
  out: { id: 9, cid: 'out', index: 'signal_set_9', signals: { v: { id: 12, field: 's12' } } },
};

export async function startFakeIvis(): Promise<FakeIvis> {
  const fake: FakeIvis = {
    url: '',
    pushes: [],
    respond: undefined,
    statuses: (runId) =>
      fake.pushes
        .filter((p) => p.path === '/rest/remote/status' && p.body.runId === runId)
        .map((p) => p.body as StatusBody),
    emits: (type) =>
      fake.pushes.filter((p) => p.path === '/rest/remote/emit' && p.body.type === type).map((p) => p.body),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: PushBody = {};
      try {
        body = JSON.parse(text) as PushBody;
      } catch {
        // keep the text
      }
      const path = req.url ?? '';
      const custom = fake.respond?.(path, body);
      if (!custom || custom.status < 300) fake.pushes.push({ path, body, at: Date.now() });
      const answer = custom ?? defaultAnswer(path, body);
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

function defaultAnswer(path: string, body: PushBody): { status: number; body: unknown } {
  if (path === '/rest/remote/runRequest' && body?.type === 0) return { status: 200, body: CREATE_SIG_ANSWER };
  return { status: 200, body: {} };
}
