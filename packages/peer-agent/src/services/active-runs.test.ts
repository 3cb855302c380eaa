import type { RunHandle } from '../executors/executor';
import { ActiveRuns } from './active-runs';
import type { RunReporter } from './run-reporter.service';

/** A job handle that counts its stops; `done` never settles (not needed here). */
function handle(): RunHandle & { stops: number } {
  const h = {
    stops: 0,
    done: new Promise<never>(() => undefined),
    stop: () => {
      h.stops++;
    },
  };
  return h;
}

/** A reporter that only records whether it was silenced. */
function reporter(): { reporter: RunReporter; silenced: () => boolean } {
  let silenced = false;
  const fake = {
    suppress: () => {
      silenced = true;
    },
  };
  return { reporter: fake as unknown as RunReporter, silenced: () => silenced };
}

describe('ActiveRuns', () => {
  it('when runs are added and removed then the gauge follows the count and lookups see them', () => {
    const counts: number[] = [];
    const runs = new ActiveRuns((n) => counts.push(n));
    const a = runs.add(1, 1);
    const b = runs.add(2, 3);
    expect(a).toMatchObject({ runId: 1, execution: 1, phase: 'preparing' });
    expect(a.abort.signal.aborted).toBe(false);
    expect(runs.size).toBe(2);
    expect(runs.has(2)).toBe(true);
    expect(runs.get(2)).toBe(b);
    expect(runs.list()).toEqual([a, b]);
    runs.remove(a);
    expect(runs.has(1)).toBe(false);
    expect(runs.get(1)).toBeUndefined();
    expect(runs.size).toBe(1);
    expect(counts).toEqual([1, 2, 1]);
  });

  it('when a stale entry of a run id that was added again is removed then the new one stays', () => {
    const counts: number[] = [];
    const runs = new ActiveRuns((n) => counts.push(n));
    const old = runs.add(1, 1);
    const current = runs.add(1, 2);
    runs.remove(old);
    expect(runs.get(1)).toBe(current);
    expect(counts).toEqual([1, 1]);
  });

  it('when the last run goes then whenIdle resolves, and not before', async () => {
    const runs = new ActiveRuns();
    await runs.whenIdle(); // none: at once
    const a = runs.add(1, 1);
    const b = runs.add(2, 1);
    let idle = false;
    const waiting = runs.whenIdle().then(() => {
      idle = true;
    });
    runs.remove(a);
    await Promise.resolve();
    await Promise.resolve();
    expect(idle).toBe(false);
    runs.remove(b);
    await waiting;
    expect(idle).toBe(true);
  });

  it('when the run is unknown or of another execution then a stop is not-here and changes nothing', () => {
    const runs = new ActiveRuns();
    const run = runs.add(1, 2);
    run.phase = 'running';
    run.handle = handle();
    expect(runs.requestStop(9, 'stop')).toBe('not-here');
    expect(runs.requestStop(1, 'stop', 1)).toBe('not-here');
    expect(run.stop).toBeUndefined();
    expect((run.handle as ReturnType<typeof handle>).stops).toBe(0);
    expect(runs.requestStop(1, 'stop', 2)).toBe('stopping');
  });

  it('when a run is preparing then a stop aborts its build and signals no job', () => {
    const runs = new ActiveRuns();
    const run = runs.add(1, 1);
    const h = handle();
    run.handle = h;
    expect(runs.requestStop(1, 'shutdown')).toBe('stopping');
    expect(run.abort.signal.aborted).toBe(true);
    expect(h.stops).toBe(0);
    expect(run.stop).toBe('shutdown');
  });

  it('when a run is running then a stop signals its job and leaves the build alone', () => {
    const runs = new ActiveRuns();
    const run = runs.add(1, 1);
    run.phase = 'running';
    const h = handle();
    run.handle = h;
    expect(runs.requestStop(1, 'stop')).toBe('stopping');
    expect(h.stops).toBe(1);
    expect(run.abort.signal.aborted).toBe(false);
  });

  it('when a run is finishing then a stop or delete is refused and its pushes are not silenced', () => {
    const runs = new ActiveRuns();
    const run = runs.add(1, 1);
    run.phase = 'finishing';
    const h = handle();
    const r = reporter();
    run.handle = h;
    run.reporter = r.reporter;
    expect(runs.requestStop(1, 'delete')).toBe('finishing');
    expect(run.stop).toBeUndefined();
    expect(r.silenced()).toBe(false);
    expect(h.stops).toBe(0);
  });

  it('when two reasons come then the first wins, except that a delete always wins and silences the pushes', () => {
    const runs = new ActiveRuns();
    const run = runs.add(1, 1);
    run.phase = 'running';
    const r = reporter();
    run.reporter = r.reporter;
    run.handle = handle();
    runs.requestStop(1, 'stop');
    runs.requestStop(1, 'shutdown');
    expect(run.stop).toBe('stop');
    expect(r.silenced()).toBe(false);
    runs.requestStop(1, 'delete');
    expect(run.stop).toBe('delete');
    expect(r.silenced()).toBe(true);
    runs.requestStop(1, 'stop');
    expect(run.stop).toBe('delete');
  });

  it('when a run has no reporter or job handle yet then a delete or stop still takes, without throwing', () => {
    const runs = new ActiveRuns();
    const preparing = runs.add(1, 1);
    expect(runs.requestStop(1, 'delete')).toBe('stopping');
    expect(preparing.stop).toBe('delete');
    const starting = runs.add(2, 1);
    starting.phase = 'running';
    expect(runs.requestStop(2, 'stop')).toBe('stopping');
    expect(starting.stop).toBe('stop');
  });
});
