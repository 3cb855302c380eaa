import { isFinalState, type RunState } from '@rps/common';

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
