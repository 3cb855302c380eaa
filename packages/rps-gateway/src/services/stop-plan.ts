import { isFinalState, RemoteRunState, type PushJobData, type RunState } from '@rps/common';
import { RUN_CANCELLED_MESSAGE } from '../gateway.constants';

/**
 * What a stop does in each state:
 * - `cancel`: no process runs yet, so the gateway stops the record itself and
 *   owes IVIS-core the final push (the agent's start compare-and-set fails).
 * - `signal`: a process runs on a peer; only its agent can stop it.
 * - `none`: the run is over; IVIS-core already has (or will get) its end.
 */
export type StopAction = 'cancel' | 'signal' | 'none';

export function planStop(state: RunState): StopAction {
  if (state === 'queued' || state === 'dispatched') return 'cancel';
  if (state === 'running') return 'signal';
  if (isFinalState(state)) return 'none';
  return assertNever(state);
}

function assertNever(value: never): never {
  throw new Error(`unhandled run state ${String(value)}`);
}

/**
 * The final status push and the stop emit of a run stopped before it started,
 * in the order the RJR sends them (ivis-protocol.md 3.3). Job ids carry the
 * execution, so a repeated stop never pushes twice.
 */
export function buildStopPushes(
  runId: number,
  execution: number,
  finishedAt: string,
): Array<{ jobId: string; data: PushJobData }> {
  return [
    {
      jobId: `stop-${runId}-${execution}-status`,
      data: {
        kind: 'status',
        body: {
          runId,
          status: { status: RemoteRunState.RUN_FAIL, finished_at: finishedAt },
          output: RUN_CANCELLED_MESSAGE,
        },
      },
    },
    { jobId: `stop-${runId}-${execution}-emit`, data: { kind: 'emit', body: { type: `run/${runId}/stop` } } },
  ];
}
