import { pushJobDataSchema, RUN_STATES } from '@rps/common';
import { buildStopPushes, planStop } from './stop-plan';

describe('planStop', () => {
  it('when the run has not started then the gateway cancels it itself', () => {
    expect(planStop('queued')).toBe('cancel');
    expect(planStop('dispatched')).toBe('cancel');
  });

  it('when the run is running then its agent must be signalled', () => {
    expect(planStop('running')).toBe('signal');
  });

  it('when the run is over then there is nothing to do', () => {
    for (const state of ['succeeded', 'failed', 'stopped', 'lost'] as const)
      expect(planStop(state)).toBe('none');
  });

  it('when every state is planned then none throws', () => {
    for (const state of RUN_STATES) expect(() => planStop(state)).not.toThrow();
  });
});

describe('buildStopPushes', () => {
  const pushes = buildStopPushes(42, 3, '2026-01-01T00:00:00.000Z');

  it('when built then the final RUN_FAIL status comes first, then the stop emit', () => {
    expect(pushes.map((p) => p.data)).toEqual([
      {
        kind: 'status',
        body: {
          runId: 42,
          status: { status: 2, finished_at: '2026-01-01T00:00:00.000Z' },
          output: 'INFO: Run Cancelled\n',
        },
      },
      { kind: 'emit', body: { type: 'run/42/stop' } },
    ]);
  });

  it('when built then consumers accept the data and the ids are BullMQ-legal and per execution', () => {
    for (const push of pushes) expect(pushJobDataSchema.safeParse(push.data).success).toBe(true);
    expect(pushes.map((p) => p.jobId)).toEqual(['stop-42-3-status', 'stop-42-3-emit']);
    for (const push of pushes) expect(push.jobId).not.toContain(':');
  });
});
