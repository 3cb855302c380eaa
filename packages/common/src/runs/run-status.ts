import type { RunRecord } from '../contracts/run.contract';
import type { RunStatusResponse } from '../wire/ivis.schemas';
import { toRemoteRunState } from './run-state';

/**
 * The job-runner status object IVIS-core reads from `GET /run/:id`
 * (ivis-protocol.md 1.6): `finished_at` only once the run has finished.
 */
export function toStatusResponse(record: RunRecord, output: string): RunStatusResponse {
  const status: RunStatusResponse = { status: toRemoteRunState(record.state), output, error: record.error };
  if (record.finishedAt) status.finished_at = record.finishedAt;
  return status;
}
