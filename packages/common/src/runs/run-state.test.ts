import {
  FINAL_STATES,
  RUN_EVENTS,
  RUN_STATES,
  RemoteRunState,
  isFinalState,
  toRemoteRunState,
  transition,
  type RunEvent,
  type RunState,
} from './run-state';

// Written by hand from the brief, not copied from the implementation's table,
// so a wrong entry there shows up as a mismatch here.
const LEGAL: Record<string, RunState> = {
  'queued dispatch': 'dispatched',
  'queued fail': 'failed',
  'queued stop': 'stopped',
  'dispatched start': 'running',
  'dispatched fail': 'failed',
  'dispatched stop': 'stopped',
  'dispatched requeue': 'queued',
  'running succeed': 'succeeded',
  'running fail': 'failed',
  'running stop': 'stopped',
  'running lose': 'lost',
  'succeeded resubmit': 'queued',
  'failed resubmit': 'queued',
  'stopped resubmit': 'queued',
  'lost resubmit': 'queued',
};

const ALL_STATES: RunState[] = ['queued', 'dispatched', 'running', 'succeeded', 'failed', 'stopped', 'lost'];
const ALL_EVENTS: RunEvent[] = [
  'dispatch',
  'start',
  'succeed',
  'fail',
  'stop',
  'lose',
  'requeue',
  'resubmit',
];

const pairs = ALL_STATES.flatMap((state) => ALL_EVENTS.map((event) => [state, event] as const));

describe('run state machine', () => {
  it('when listing states and events then the exported lists match the expected sets', () => {
    expect([...RUN_STATES]).toEqual(ALL_STATES);
    expect([...RUN_EVENTS]).toEqual(ALL_EVENTS);
  });

  it('when the expected table is checked then it lists 15 legal moves', () => {
    // Guards the test itself: a typo in a key above would silently make a pair illegal.
    expect(Object.keys(LEGAL)).toHaveLength(15);
    for (const key of Object.keys(LEGAL)) {
      expect(pairs.map(([s, e]) => `${s} ${e}`)).toContain(key);
    }
  });

  it.each(pairs)('when %s receives %s then the result matches the expected table', (state, event) => {
    const expected = LEGAL[`${state} ${event}`];
    const result = transition(state, event);
    if (expected === undefined) {
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.reason).toContain(state);
        expect(result.reason).toContain(event);
      }
    } else {
      expect(result).toEqual({ ok: true, to: expected });
    }
  });

  it('when an illegal event arrives then the reason is a readable sentence', () => {
    expect(transition('queued', 'start')).toEqual({ ok: false, reason: 'cannot start a run that is queued' });
    expect(transition('succeeded', 'fail')).toEqual({
      ok: false,
      reason: 'cannot fail a run that is succeeded (the run is over; only resubmit applies)',
    });
    expect(transition('running', 'resubmit')).toEqual({
      ok: false,
      reason: 'cannot resubmit a run that is running',
    });
  });

  it('when a final state is asked then exactly succeeded, failed, stopped and lost are final', () => {
    expect([...FINAL_STATES].sort()).toEqual(['failed', 'lost', 'stopped', 'succeeded']);
    expect(ALL_STATES.filter((s) => isFinalState(s)).sort()).toEqual([
      'failed',
      'lost',
      'stopped',
      'succeeded',
    ]);
  });

  it.each([
    ['queued', 4],
    ['dispatched', 4],
    ['running', 3],
    ['succeeded', 0],
    ['failed', 2],
    ['stopped', 2],
    ['lost', 2],
  ] as const)('when %s is reported to IVIS then its code is %i', (state, code) => {
    expect(toRemoteRunState(state)).toBe(code);
  });

  it('when the IVIS codes are read then they match shared/remote-run.js', () => {
    expect(RemoteRunState).toEqual({ SUCCESS: 0, RUN_FAIL: 2, RUNNING: 3, QUEUED: 4 });
  });

  it.each(ALL_STATES.filter((s) => !['succeeded', 'failed', 'stopped', 'lost'].includes(s)))(
    'when a run is %s then some sequence of events reaches a final state',
    (start) => {
      // Breadth-first search over the real transition function: a run that
      // could get stuck would never be reported to IVIS-core.
      const seen = new Set<RunState>([start]);
      const frontier: RunState[] = [start];
      let reachedFinal = false;
      while (frontier.length > 0 && !reachedFinal) {
        const state = frontier.shift()!;
        for (const event of ALL_EVENTS) {
          const result = transition(state, event);
          if (!result.ok || seen.has(result.to)) continue;
          if (['succeeded', 'failed', 'stopped', 'lost'].includes(result.to)) reachedFinal = true;
          seen.add(result.to);
          frontier.push(result.to);
        }
      }
      expect(reachedFinal).toBe(true);
    },
  );
});
