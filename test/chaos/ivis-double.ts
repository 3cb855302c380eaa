import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TestPki } from '@rps/common/testing';

/** IVIS-core's remote run states (ivis-protocol.md 3.1). */
export const IVIS = { SUCCESS: 0, RUN_FAIL: 2, RUNNING: 3, QUEUED: 4 } as const;

/** One `POST /rest/remote/status` as IVIS-core received it. */
export interface StatusPush {
  runId: number;
  status: number;
  at: number;
}

/**
 * IVIS-core as the pool's peers reach it through the forwarder: HTTPS that
 * requires the pool's executor certificate (like IVIS-core's Apache), records
 * every status push and emit, and on a final status deletes the run on the
 * gateway before it answers the push, as IVIS-core's push handler does
 * (ivis-protocol.md 2.3). A second final status of another state is answered
 * 500 "status clash" like IVIS-core, and still recorded: the checks count it.
 */
export interface IvisDouble {
  url: string;
  /** Status pushes per run id, in arrival order. */
  statuses: Map<number, StatusPush[]>;
  /** Emit types per run id (`run/<id>/success`, `run/<id>/fail`, ...). */
  emits: Map<number, string[]>;
  close(): Promise<void>;
}

export async function startIvisDouble(
  pki: TestPki,
  deleteRun: (runId: number) => Promise<unknown>,
): Promise<IvisDouble> {
  const statuses = new Map<number, StatusPush[]>();
  const emits = new Map<number, string[]>();
  const server = https.createServer(
    {
      cert: pki.server.cert,
      key: pki.server.key,
      ca: pki.ca.cert,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const answer = (status: number, body: object = {}) =>
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        let body: { runId?: unknown; status?: { status?: unknown }; type?: unknown } = {};
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as typeof body;
        } catch {
          return answer(400);
        }
        if (req.url === '/rest/remote/status' && typeof body.runId === 'number') {
          const runId = body.runId;
          const status = Number(body.status?.status);
          const list = statuses.get(runId) ?? [];
          const earlierFinal = list.find((p) => isFinal(p.status));
          list.push({ runId, status, at: Date.now() });
          statuses.set(runId, list);
          if (!isFinal(status)) return answer(200);
          if (earlierFinal && earlierFinal.status !== status) return answer(500, { error: 'status clash' });
          // IVIS-core deletes the run on the executor before it answers the push.
          void deleteRun(runId)
            .catch(() => undefined)
            .then(() => answer(200));
          return;
        }
        if (req.url === '/rest/remote/emit' && typeof body.type === 'string') {
          const match = /^run\/(\d+)\//.exec(body.type);
          if (match) {
            const runId = Number(match[1]);
            emits.set(runId, [...(emits.get(runId) ?? []), body.type]);
          }
          return answer(200);
        }
        return answer(200);
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    statuses,
    emits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function isFinal(status: number): boolean {
  return status === IVIS.SUCCESS || status === IVIS.RUN_FAIL;
}
