import { AppError, runRequestBodySchema, zodErrorBody } from '@rps/common';
import { fastRunRequestMeta } from './run-body.validator';

/** What the gateway needs from a run body; the body itself is stored unchanged. */
export interface RunRequestMeta {
  taskId: number;
  jobId: number;
}

/**
 * Checks a run body the way the RJR would (ivis-protocol.md 1.4) and returns
 * its ids. The raw bytes, not the parsed value, are what gets stored: zod
 * reorders keys, and a peer must see exactly what IVIS-core sent.
 *
 * The one-pass validator (`run-body.validator.ts`) decides the bodies it can
 * vouch for without building the archive as millions of numbers; everything
 * else, every bad body included, goes to {@link referenceRunRequest}, so the
 * 400s are the reference's own. `fast` is the validator's verdict when the
 * caller already ran it over the upload.
 */
export function parseRunRequest(raw: Buffer, fast?: RunRequestMeta | null): RunRequestMeta {
  return (fast === undefined ? fastRunRequestMeta(raw) : fast) ?? referenceRunRequest(raw);
}

/** The reference: `JSON.parse` and `runRequestBodySchema`, with their errors as 400s. */
export function referenceRunRequest(raw: Buffer): RunRequestMeta {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new AppError('invalid_json', 400, 'request body is not valid JSON', [
      { path: '(body)', message: err instanceof Error ? err.message : String(err) },
    ]);
  }
  const parsed = runRequestBodySchema.safeParse(json);
  if (!parsed.success) {
    const body = zodErrorBody(parsed.error, 'invalid run request body');
    throw new AppError(body.code, 400, body.error, body.details);
  }
  return { taskId: Number(parsed.data.taskId), jobId: Number(parsed.data.jobId) };
}
