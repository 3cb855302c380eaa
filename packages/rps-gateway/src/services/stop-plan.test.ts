import { RUN_STATES } from '@rps/common';
import { planStop } from './stop-plan';

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
