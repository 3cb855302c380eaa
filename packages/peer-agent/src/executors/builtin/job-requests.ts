import { jobRequestLineSchema, RequestType, type RunRequestPush } from '@rps/common';

/** Sends a run request to IVIS-core and returns its JSON answer (or `{error}`). */
export type RunRequestSender = (push: RunRequestPush) => Promise<Record<string, unknown>>;

/**
 * Answers one fd-3 line of a job (ivis-protocol.md 6.2): parse, validate,
 * relay to IVIS-core's `/rest/remote/runRequest` (2.5) and hand back IVIS-core's
 * answer, with the request's `id` echoed. Whatever goes wrong, the job gets
 * an object with `error`, never `undefined` (the RJR bug of section 7, 15a).
 */
export async function answerJobRequest(
  line: string,
  jobId: number,
  send: RunRequestSender,
): Promise<Record<string, unknown>> {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (err) {
    return { error: `Request parsing failed: ${err instanceof Error ? err.message : String(err)}` };
  }
  const echo = isObject(raw) && raw.id !== undefined && raw.id !== null ? { id: raw.id } : {};
  const parsed = jobRequestLineSchema.safeParse(raw);
  if (!parsed.success || !isObject(raw)) {
    const why = parsed.success
      ? 'request must be an object'
      : parsed.error.issues.map((i) => i.message).join('; ');
    return { ...echo, error: `Invalid request: ${why}` };
  }
  const push: RunRequestPush =
    parsed.data.type === 'store_state'
      ? // The line itself, unchanged, is IVIS-core's `payload.request` (TV10).
        { type: RequestType.STORE_STATE, payload: { jobId, request: raw } }
      : {
          type: RequestType.CREATE_SIG,
          payload: { jobId, signalSets: parsed.data.signalSets, signalsSpec: parsed.data.signals },
        };
  return { ...echo, ...(await send(push)) };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
