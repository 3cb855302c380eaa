import { pushJobDataSchema } from './run.contract';
import { buildStopPushes, stopStatusJobId } from './stop.contract';

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
    expect(stopStatusJobId(42, 3)).toBe(pushes[0]!.jobId);
    for (const push of pushes) expect(push.jobId).not.toContain(':');
  });
});
