import { TaskGate } from './task-gate';

describe('TaskGate', () => {
  it('when runs share a task then they hold it together and an exclusive waits for all of them', async () => {
    const gate = new TaskGate();
    const a = await gate.shared(1);
    const b = await gate.shared(1);
    let deleted = false;
    const del = gate.exclusive(1).then((lease) => {
      deleted = true;
      return lease;
    });
    await Promise.resolve();
    a.release();
    await Promise.resolve();
    expect(deleted).toBe(false);
    b.release();
    (await del).release();
    expect(deleted).toBe(true);
    expect(gate.busy(1)).toBe(false);
  });

  it('when an exclusive lease is downgraded then a waiting writer still waits', async () => {
    const gate = new TaskGate();
    const build = await gate.exclusive(2);
    let got = false;
    const del = gate.exclusive(2).then((lease) => ((got = true), lease));
    build.downgrade();
    await new Promise((r) => setImmediate(r));
    expect(got).toBe(false);
    build.release();
    (await del).release();
    expect(got).toBe(true);
  });

  it('when a waiter is aborted then it leaves the queue', async () => {
    const gate = new TaskGate();
    const held = await gate.exclusive(3);
    const abort = new AbortController();
    const waiting = gate.shared(3, abort.signal);
    abort.abort();
    await expect(waiting).rejects.toThrow('aborted');
    held.release();
    expect(gate.busy(3)).toBe(false);
  });
});
