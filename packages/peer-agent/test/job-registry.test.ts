import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { testLogger, waitFor } from '@rps/common/testing';
import { JobRegistry, processStartTime } from '../src/executors/builtin/job-registry';

// The notes a later agent life uses to end job processes an earlier one left
// running, against real processes (Linux /proc).
describe('JobRegistry', () => {
  let dir: string;
  const children: ChildProcess[] = [];

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-jobs-'));
  });

  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A stand-in job: its own process group, as the builtin executor spawns jobs. */
  const spawnJob = () => {
    const child = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    children.push(child);
    return child.pid!;
  };

  it('when a noted job process is still running then killLeftover ends it and forgets the note', async () => {
    const registry = new JobRegistry(dir, testLogger());
    const pid = spawnJob();
    registry.record(7, pid);
    expect(fs.existsSync(path.join(dir, '7.json'))).toBe(true);
    expect(registry.killLeftover(7)).toBe(true);
    await waitFor('job ended', () => processStartTime(pid) === null, { timeoutMs: 5000 });
    expect(fs.existsSync(path.join(dir, '7.json'))).toBe(false);
    expect(registry.killLeftover(7)).toBe(false);
  });

  it('when the pid now names another process (start time differs) then nothing is killed', () => {
    const registry = new JobRegistry(dir, testLogger());
    const pid = spawnJob();
    // As if the noted job had ended and its pid been reused by this process.
    fs.writeFileSync(path.join(dir, '8.json'), JSON.stringify({ pid, startTime: '1' }));
    expect(registry.killLeftover(8)).toBe(false);
    expect(processStartTime(pid)).not.toBeNull();
  });

  it('when a job ended normally then its note is gone and there is nothing to kill', () => {
    const registry = new JobRegistry(dir, testLogger());
    registry.record(9, spawnJob());
    registry.forget(9);
    expect(registry.killLeftover(9)).toBe(false);
  });
});
