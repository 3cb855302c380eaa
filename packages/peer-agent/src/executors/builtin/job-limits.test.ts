import { failureMessage, limitReason, type JobEnd } from './job-limits';
import { jobCommand, readHardLimits, type JobLimits } from './job-sandbox';

const LIMITS: JobLimits = {
  wallMs: 5000,
  memoryMb: 256,
  cpuSeconds: 60,
  openFiles: 64,
  processes: 32,
  fileSizeMb: 10,
  outputBytes: 1000,
};
const end = (overrides: Partial<JobEnd>): JobEnd => ({
  code: 1,
  signal: null,
  killedFor: null,
  stderr: '',
  ...overrides,
});

describe('limitReason', () => {
  it.each([
    [
      { killedFor: 'wall' as const, code: null, signal: 'SIGINT' as const },
      'wall time limit of 5000 ms exceeded',
    ],
    [{ killedFor: 'wall' as const, code: 0 }, 'wall time limit of 5000 ms exceeded'],
    [{ killedFor: 'output' as const }, 'output limit of 1000 bytes exceeded'],
    [{ code: null, signal: 'SIGXCPU' as const }, 'CPU time limit of 60 s exceeded'],
    [{ code: null, signal: 'SIGXFSZ' as const }, 'file size limit of 10 MB exceeded'],
    [{ stderr: 'OSError: [Errno 27] File too large\n' }, 'file size limit of 10 MB exceeded'],
    [{ stderr: 'Traceback...\nMemoryError\n' }, 'memory limit of 256 MB exceeded'],
    [{ stderr: 'OSError: [Errno 24] Too many open files\n' }, 'open files limit of 64 reached'],
    [
      { stderr: 'BlockingIOError: [Errno 11] Resource temporarily unavailable\n' },
      'process limit of 32 (for all jobs of the job user) reached',
    ],
  ])('when the job ended as %j then the reason is %s', (overrides, reason) => {
    expect(limitReason(end(overrides), LIMITS)).toBe(reason);
  });

  it('when the job succeeded, failed for its own reasons, or was stopped then no limit is named', () => {
    expect(limitReason(end({ code: 0, stderr: 'MemoryError' }), LIMITS)).toBeNull();
    expect(limitReason(end({ code: 3, stderr: 'boom' }), LIMITS)).toBeNull();
    expect(limitReason(end({ killedFor: 'stop', stderr: 'MemoryError' }), LIMITS)).toBeNull();
    expect(limitReason(end({ stderr: 'MemoryError' }), { ...LIMITS, memoryMb: null })).toBeNull();
  });

  it('when a limit was hit then the message starts with it and keeps the RJR shape', () => {
    expect(
      failureMessage(end({ killedFor: 'wall', code: null, signal: 'SIGKILL', stderr: 'e' }), LIMITS),
    ).toBe(
      'Run failed: wall time limit of 5000 ms exceeded (ended with code null and signal SIGKILL)\n\nError log:\ne',
    );
    expect(failureMessage(end({ code: 3, stderr: 'boom\n' }), LIMITS)).toBe(
      'Run failed with code 3 and signal null\n\nError log:\nboom\n',
    );
    expect(failureMessage(end({ code: 0 }), LIMITS)).toBe('');
  });
});

describe('jobCommand', () => {
  const tools = { prlimit: '/usr/bin/prlimit', setpriv: '/usr/bin/setpriv' };
  const python = '/w/tasks/1/.env/bin/python';

  it('when jobs run as the job user then limits are set soft = hard and setpriv drops to it', () => {
    const identity = { kind: 'user' as const, name: 'rps-job', uid: 999, gid: 995 };
    expect(jobCommand({ tools, identity, limits: LIMITS, python, args: ['job.py'] })).toEqual({
      file: '/usr/bin/prlimit',
      args: [
        `--as=${256 * 1024 * 1024}:${256 * 1024 * 1024}`,
        '--cpu=60:65',
        '--nofile=64:64',
        `--fsize=${10 * 1024 * 1024}:${10 * 1024 * 1024}`,
        '--nproc=32:32',
        '--core=0:0',
        '--',
        '/usr/bin/setpriv',
        '--reuid=999',
        '--regid=995',
        '--clear-groups',
        '--no-new-privs',
        '--',
        python,
        'job.py',
      ],
    });
  });

  it("when jobs run as the agent itself then limits are capped at the agent's hard limits and no user switch or nproc is asked", () => {
    const identity = { kind: 'same' as const, name: 'dev', uid: 1000, gid: 1000 };
    const hard = readHardLimits(
      'Limit  Soft Limit  Hard Limit  Units\nMax open files            1024                 32                   files\nMax address space         unlimited            unlimited            bytes\n',
    );
    const { args } = jobCommand({
      tools,
      identity,
      limits: { ...LIMITS, cpuSeconds: null },
      python,
      args: ['job.py'],
      hard,
    });
    expect(args).toContain('--nofile=32:32');
    expect(args).toContain(`--as=${256 * 1024 * 1024}:${256 * 1024 * 1024}`);
    expect(
      args.some((a) => a.startsWith('--nproc') || a.startsWith('--cpu') || a.startsWith('--reuid')),
    ).toBe(false);
    expect(args.slice(args.indexOf('/usr/bin/setpriv'))).toEqual([
      '/usr/bin/setpriv',
      '--no-new-privs',
      '--',
      python,
      'job.py',
    ]);
  });
});
