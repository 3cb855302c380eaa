/**
 * The run state machine (DESIGN.md "Runs"): the one place where a run's state
 * may change. Every service asks {@link transition} before it writes a new state,
 * so a gateway, an agent and the liveness checker cannot disagree about which
 * moves are legal.
 *
 * @packageDocumentation
 */

/** Every state a run record can be in, in lifecycle order. */
export const RUN_STATES = [
  'queued',
  'dispatched',
  'running',
  'succeeded',
  'failed',
  'stopped',
  'lost',
] as const;

/** A run's state as stored in its Redis record. */
export type RunState = (typeof RUN_STATES)[number];

/**
 * States a run never leaves on its own: only a resubmit from IVIS-core moves it
 * on. Their IVIS code (0 or 2) is what makes IVIS-core close the run.
 */
export const FINAL_STATES = ['succeeded', 'failed', 'stopped', 'lost'] as const satisfies readonly RunState[];

/** One of {@link FINAL_STATES}. */
export type FinalRunState = (typeof FINAL_STATES)[number];

/** Whether `state` is final, i.e. the run is over and its result must reach IVIS-core. */
export function isFinalState(state: RunState): state is FinalRunState {
  return (FINAL_STATES as readonly RunState[]).includes(state);
}

/**
 * Everything that can happen to a run.
 *
 * - `dispatch`: an agent took the queued job.
 * - `start`: the job process started on the peer.
 * - `succeed`: the process exited with code 0.
 * - `fail`: build failure, reconciliation failure or start failure.
 * - `stop`: IVIS-core asked to stop the run.
 * - `lose`: the peer running it vanished.
 * - `requeue`: the peer holding a dispatched (not yet started) run vanished.
 * - `resubmit`: IVIS-core POSTed a run id again after the run had ended.
 */
export const RUN_EVENTS = [
  'dispatch',
  'start',
  'succeed',
  'fail',
  'stop',
  'lose',
  'requeue',
  'resubmit',
] as const;

/** One of {@link RUN_EVENTS}. */
export type RunEvent = (typeof RUN_EVENTS)[number];

/** The answer of {@link transition}: the next state, or why the event does not apply. */
export type TransitionResult = { ok: true; to: RunState } | { ok: false; reason: string };

/**
 * The whole state machine as data: state -> event -> next state. A missing
 * entry is an illegal transition. Read this table, not the callers, to learn
 * how a run moves.
 */
const TRANSITIONS: Readonly<Record<RunState, Readonly<Partial<Record<RunEvent, RunState>>>>> = {
  // A queued run may fail without ever being dispatched: reconciliation can
  // find it unschedulable (e.g. its body is gone).
  queued: { dispatch: 'dispatched', fail: 'failed', stop: 'stopped' },
  // A dispatched run has not started, so a vanished peer never ran it: putting
  // it back in the queue keeps "at most once" and avoids a needless failure.
  dispatched: { start: 'running', fail: 'failed', stop: 'stopped', requeue: 'queued' },
  // Only a started run may be lost: its process may have had side effects, so
  // running it again elsewhere could execute it twice.
  running: { succeed: 'succeeded', fail: 'failed', stop: 'stopped', lose: 'lost' },
  // IVIS-core re-runs a run id by POSTing it again (RJR reuses the row). A
  // resubmit of a live run is absent on purpose: the gateway answers it
  // idempotently without a transition.
  succeeded: { resubmit: 'queued' },
  failed: { resubmit: 'queued' },
  stopped: { resubmit: 'queued' },
  lost: { resubmit: 'queued' },
};

/**
 * Applies `event` to a run in state `from`. Pure: it never throws, so callers
 * can treat a late or duplicate event (e.g. a `start` after a `stop`) as a
 * normal outcome to log and drop.
 *
 * @returns `{ ok: true, to }` for a legal move, otherwise `{ ok: false, reason }`
 *   with a sentence naming both the state and the event.
 */
export function transition(from: RunState, event: RunEvent): TransitionResult {
  const to = TRANSITIONS[from][event];
  if (to !== undefined) {
    return { ok: true, to };
  }
  const why = isFinalState(from) ? ' (the run is over; only resubmit applies)' : '';
  return { ok: false, reason: `cannot ${event} a run that is ${from}${why}` };
}

/**
 * IVIS `RemoteRunState` codes (`shared/remote-run.js`), the only state numbers
 * IVIS-core accepts from an executor. 1 is deliberately absent: it is not a
 * remote state, and IVIS-core answers 400 to it.
 */
export const RemoteRunState = { SUCCESS: 0, RUN_FAIL: 2, RUNNING: 3, QUEUED: 4 } as const;

/** One of the {@link RemoteRunState} numbers: 0, 2, 3 or 4. */
export type RemoteRunStateCode = (typeof RemoteRunState)[keyof typeof RemoteRunState];

/**
 * The code IVIS-core sees for a run. IVIS has no words for dispatched, stopped
 * or lost: a dispatched run is still waiting, and stopped and lost runs ended
 * without success, which IVIS-core only knows as RUN_FAIL.
 */
export function toRemoteRunState(state: RunState): RemoteRunStateCode {
  switch (state) {
    case 'queued':
    case 'dispatched':
      return RemoteRunState.QUEUED;
    case 'running':
      return RemoteRunState.RUNNING;
    case 'succeeded':
      return RemoteRunState.SUCCESS;
    case 'failed':
    case 'stopped':
    case 'lost':
      return RemoteRunState.RUN_FAIL;
  }
}

/**
 * The states from which `event` is legal, derived from the same table as
 * {@link transition}; the Redis compare-and-set scripts take this list so the
 * state machine stays written once, in TypeScript.
 */
export function statesAllowing(event: RunEvent): RunState[] {
  return RUN_STATES.filter((state) => TRANSITIONS[state][event] !== undefined);
}
