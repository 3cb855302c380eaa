/**
 * Zod schemas of the IVIS wire formats (ivis-protocol.md sections 1.3-1.6, 2.3-2.5
 * and 6.2). IVIS-core, the RJR peers and the RPS services are separate
 * deployables on possibly different versions, so every message is checked where
 * it enters (STYLE.md convention 4).
 *
 * Messages that the RPS relays are loose objects: fields this version does not
 * know are kept, because the receiver may need them. Zod puts known keys first
 * in its output, so a relay that must stay byte-compatible forwards the raw body
 * and uses the parsed value only to decide.
 *
 * @packageDocumentation
 */
import { z } from 'zod';

import { RemoteRunState } from '../runs/run-state';

/**
 * A key that must be present, with any value including null. The RJR rejects a
 * run body that lacks `state` even though IVIS-core sends `null` for "no state",
 * so "absent" and "null" are different answers here. JSON has no undefined, so
 * undefined can only mean the key is missing.
 */
const presentSchema = z.custom<unknown>((value) => value !== undefined, {
  message: 'required (may be null)',
});

/**
 * An id the RJR reads with `parseInt`: IVIS-core sends numbers, but a string of
 * digits has always been accepted, so rejecting it would break older callers.
 */
const intLikeSchema = z.union([z.int(), z.string().regex(/^[0-9]+$/)], {
  error: 'must be an integer or a string of decimal digits',
});

/** Short description of a bad array element: the element itself could be a huge object. */
function describeElement(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 20 ? `${value.slice(0, 20)}…` : value);
  return value === null ? 'null' : typeof value;
}

/**
 * Index and description of the first element of `data` that is not a byte, or
 * null if all are bytes. One plain loop, because an archive is millions of
 * elements and a per-element zod schema would be far too slow.
 */
function firstNonByte(data: readonly unknown[]): { index: number; got: string } | null {
  for (let index = 0; index < data.length; index++) {
    const value = data[index];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255) {
      return { index, got: describeElement(value) };
    }
  }
  return null;
}

/**
 * `codeArchive`: `Buffer.prototype.toJSON()` of the task's tar file. The RJR only
 * requires a string `type` and some `data`; the byte check for `"Buffer"` is
 * ours, so that a corrupt archive is refused at the gateway instead of failing
 * a build on a peer later.
 */
const codeArchiveSchema = z
  .looseObject({ type: z.string(), data: presentSchema })
  .superRefine((archive, ctx) => {
    if (archive.type !== 'Buffer') return;
    if (!Array.isArray(archive.data)) {
      ctx.addIssue({ code: 'custom', path: ['data'], message: 'codeArchive.data must be an array of bytes' });
      return;
    }
    const bad = firstNonByte(archive.data);
    if (bad !== null) {
      ctx.addIssue({
        code: 'custom',
        path: ['data', bad.index],
        message: `codeArchive.data[${bad.index}] must be an integer 0..255, got ${bad.got}`,
      });
    }
  });

/**
 * Body of `POST /rps/run/:runId` (1.3), accepted exactly when the RJR would
 * accept it (1.4), plus the `codeArchive` byte check. Unknown fields pass
 * through. `runId` in the body is ignored by the RJR, which uses the URL.
 */
export const runRequestBodySchema = z.looseObject({
  taskId: intLikeSchema,
  jobId: intLikeSchema,
  type: z.string(),
  subtype: z.string().optional(),
  codeArchive: codeArchiveSchema,
  params: presentSchema,
  entities: presentSchema,
  owned: presentSchema,
  accessToken: presentSchema,
  state: presentSchema,
  runId: z.unknown().optional(),
});

/** A parsed run request body. */
export type RunRequestBody = z.infer<typeof runRequestBodySchema>;

/** An IVIS `RemoteRunState` number (0, 2, 3 or 4); anything else makes IVIS-core answer 400. */
export const remoteRunStateCodeSchema = z.literal([
  RemoteRunState.SUCCESS,
  RemoteRunState.RUN_FAIL,
  RemoteRunState.RUNNING,
  RemoteRunState.QUEUED,
]);

/**
 * Answer to `GET /rps/run/:runId` (1.6, TV3). IVIS-core reads only these four
 * fields, and throws on an unknown status during its start-up clean-up, so the
 * gateway checks its own answer against this.
 */
export const runStatusResponseSchema = z.object({
  status: remoteRunStateCodeSchema,
  output: z.string(),
  error: z.string(),
  // Omitted, never null, while the run is not final: the RJR leaves it unset.
  finished_at: z.iso.datetime({ offset: true }).optional(),
});

/** A run status answer. */
export type RunStatusResponse = z.infer<typeof runStatusResponseSchema>;

/**
 * Peer push `POST /rest/remote/status` (2.3). `status` is the RJR's stored run
 * data object (a bare number is a 400 at IVIS-core); it is loose because older
 * RJRs also send `errors`, which IVIS-core ignores.
 */
export const statusPushSchema = z.looseObject({
  runId: z.int().nonnegative(),
  status: z.looseObject({
    status: remoteRunStateCodeSchema,
    started_at: z.string().optional(),
    finished_at: z.string().optional(),
  }),
  output: z.string().optional(),
});

/** A parsed status push. */
export type StatusPush = z.infer<typeof statusPushSchema>;

/**
 * Peer push `POST /rest/remote/emit` (2.4): an event re-emitted to browsers,
 * e.g. `run/42/output` or `access_token_refresh`. IVIS-core answers 400 to a
 * missing type.
 */
export const emitPushSchema = z.looseObject({
  type: z.string().min(1),
  data: z.unknown().optional(),
});

/** A parsed emit push. */
export type EmitPush = z.infer<typeof emitPushSchema>;

/** `run/<id>/<event>`; the id is checked by {@link parseRunId}, not by the pattern. */
const RUN_EVENT_TYPE = /^run\/([^/]*)\/.+$/s;

/**
 * The run id of an emit type such as `run/42/output`, or null when the type
 * names no valid run (`access_token_refresh`, or the RJR's `run/undefined/fail`
 * after a restart) so the relay can route by run only when there is one.
 */
export function runIdFromEventType(type: string): number | null {
  const match = RUN_EVENT_TYPE.exec(type);
  const raw = match?.[1];
  return raw === undefined ? null : parseRunId(raw);
}

/** IVIS `RequestType` (`shared/remote-run.js`): what a job asks IVIS-core to do. */
export const RequestType = { CREATE_SIG: 0, STORE_STATE: 1 } as const;

/**
 * Peer push `POST /rest/remote/runRequest` (2.5). Only `payload.jobId` is
 * required by IVIS-core; the rest of the payload depends on `type` and is
 * checked there, so it passes through.
 */
export const runRequestPushSchema = z.looseObject({
  type: z.literal([RequestType.CREATE_SIG, RequestType.STORE_STATE]),
  payload: z.looseObject({ jobId: z.int() }),
});

/** A parsed run request push. */
export type RunRequestPush = z.infer<typeof runRequestPushSchema>;

/** fd-3 `store_state`: the RJR tests `state` for truthiness, so null, 0 and "" are refused. */
const storeStateLineSchema = z.looseObject({
  type: z.literal('store_state'),
  state: z.custom<unknown>((value) => Boolean(value), { message: 'state must be present and truthy' }),
  id: z.unknown().optional(),
});

/**
 * fd-3 `create_signals`: `Ivis.create_signal` sends only `signals` (adding to an
 * existing set), so either field alone is enough.
 */
const createSignalsLineSchema = z
  .looseObject({
    type: z.literal('create_signals'),
    signalSets: z.unknown().optional(),
    signals: z.unknown().optional(),
    id: z.unknown().optional(),
  })
  .refine((line) => line.signalSets != null || line.signals != null, {
    message: 'signalSets or signals is required',
    path: ['signalSets'],
  });

/**
 * One newline-delimited JSON request a job writes to fd 3 (6.2), after
 * `JSON.parse`. The job is untrusted code, so its requests are checked before
 * they are relayed to IVIS-core. `id` is echoed back to the job unchanged.
 */
export const jobRequestLineSchema = z.discriminatedUnion('type', [
  storeStateLineSchema,
  createSignalsLineSchema,
]);

/** A parsed fd-3 job request. */
export type JobRequestLine = z.infer<typeof jobRequestLineSchema>;

/** Canonical decimal: no sign, no leading zero, no exponent or fraction. */
const CANONICAL_UINT = /^(?:0|[1-9][0-9]*)$/;

/**
 * A run id from a URL parameter, or null. Only the canonical form is accepted
 * ("42", never "042", "4.2", "-1" or "1e3"), so that one run has one Redis key;
 * ids beyond `Number.MAX_SAFE_INTEGER` would silently round to another run.
 */
export function parseRunId(raw: string): number | null {
  if (!CANONICAL_UINT.test(raw)) return null;
  const id = Number(raw);
  return Number.isSafeInteger(id) ? id : null;
}
