import type { RunRecord } from '../contracts/run.contract';
import type { RunStatusResponse } from '../wire/ivis.schemas';
import { RemoteRunState, toRemoteRunState } from './run-state';

/**
 * The job-runner status object IVIS-core reads from `GET /run/:id`
 * (ivis-protocol.md 1.6): `finished_at` only once the run has finished.
 */
export function toStatusResponse(record: RunRecord, output: string): RunStatusResponse {
  // A job runner (rjr) still building the run has not started it: it pushes RUNNING only afterwards.
  const code =
    record.state === 'running' && record.phase === 'building'
      ? RemoteRunState.QUEUED
      : toRemoteRunState(record.state);
  const status: RunStatusResponse = { status: code, output, error: record.error };
  if (record.finishedAt) status.finished_at = record.finishedAt;
  return status;
}
