import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RemoteRunState } from '@rps/common';
import { freePort, startRedisServer, waitFor, type TestRedisServer } from '@rps/common/testing';
import { openPool, TEST_JOB_USER, TEST_PYTHON, type Pool } from './support/agent-harness';
import { buildAgent, startAgentProcess, type AgentProcess } from './support/agent-process';
import { startFakeIvis, type FakeIvis } from './support/fake-ivis';
import { HOSTILE_JOB_PY, hostileTaskArchive } from './support/hostile-job';
import { runBody } from './support/tasks';

const isRoot = process.getuid?.() === 0;
// Only root can run a job as another user; CI runs as root, so these run there.
const describeAsRoot = isRoot ? describe : describe.skip;

// The agent as a real process (dist/main.js, its config file 0600 as on a
// peer) and a job that attacks it: each attack fails the run with RUN_FAIL
// naming the reason, and the agent goes on taking runs.
describeAsRoot('job isolation (needs root: skipped when not run as root)', () => {
  const LIMITS = { wallMs: 4000, memoryMb: 200, outputBytes: 65536, fileSizeMb: 1 };
  let server: TestRedisServer;
  let ivis: FakeIvis;
  let pool: Pool;
  let tmp: string;
  let configFile: string;
  let workDir: string;
  let agent: AgentProcess;
  const archive = hostileTaskArchive();
  const TASK = 80;
  let nextRunId = 800;

  const agentConfig = async (id: string, executor: object) => ({
    redis: { url: server.url, prefix: pool.keys.prefix },
    log: { level: 'info' },
    agent: {
      id,
      address: '127.0.0.1',
      capacity: 1,
      stopGraceMs: 1000,
      admin: { host: '127.0.0.1', port: await freePort() },
      executor: {
        kind: 'builtin',
        workDir: path.join(tmp, id),
        python: TEST_PYTHON,
        subtypes: { __default__: { libs: [] } },
        ...executor,
      },
      ivis: {
        trustedUrlBase: ivis.url,
        sandboxUrlBase: 'http://127.0.0.1:10330',
        es: { host: '127.0.0.1', port: 10328 },
      },
    },
  });
  /** Writes a config file as an operator would: in a readable folder, the file itself 0600. */
  const writeAgentConfig = (name: string, config: object) => {
    const file = path.join(tmp, 'etc', `${name}.yaml`);
    fs.writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
    return file;
  };
  const run = async (params: Record<string, unknown>) => {
    const runId = nextRunId++;
    await pool.submit(runId, runBody({ runId, taskId: TASK, archive, params }));
    const final = await waitFor(
      `final status of run ${runId}`,
      () => ivis.statuses(runId).find((s) => s.status.status !== RemoteRunState.RUNNING),
      { timeoutMs: 30_000 }, // the first run builds the venv (several seconds on a loaded machine)
    );
    return { runId, status: final.status.status, output: final.output ?? '' };
  };
  const expectAgentAlive = () => expect(agent.child.exitCode).toBeNull();

  beforeAll(async () => {
    buildAgent();
    server = await startRedisServer();
    ivis = await startFakeIvis();
    pool = await openPool(server.url);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-agent-iso-'));
    fs.chmodSync(tmp, 0o711);
    fs.mkdirSync(path.join(tmp, 'etc'), { mode: 0o755 });
    const config = await agentConfig('peer-iso', { runAs: TEST_JOB_USER, limits: LIMITS });
    configFile = writeAgentConfig('peer-iso', config);
    workDir = path.join(tmp, 'peer-iso');
    agent = startAgentProcess(configFile);
    await waitFor(
      'agent registered',
      async () => (await pool.redis.hget(pool.keys.peer('peer-iso'), 'state')) === 'active',
      {
        timeoutMs: 20_000,
      },
    );
  }, 120_000);
  afterAll(async () => {
    agent.child.kill('SIGKILL');
    await agent.exited;
    await pool.close();
    await ivis.close();
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('when a job runs then it is the job user with no groups, a clean environment and its own writable folder', async () => {
    const result = await run({ act: 'none' });
    expect(result.status).toBe(RemoteRunState.SUCCESS);
    // agent.executor.nice (default 10) on top of the agent's own niceness (field 19 of its /proc stat).
    const stat = fs.readFileSync(`/proc/${agent.child.pid}/stat`, 'utf8');
    const agentNice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    expect(result.output).toContain(`nice ${Math.min(19, agentNice + 10)}\n`);
    const uid = Number(/uid (\d+)/.exec(result.output)?.[1]);
    expect(uid).toBeGreaterThan(0);
    expect(result.output).toMatch(/gid \d+ groups \[\]\n/);
    expect(result.output).toContain('own dir ok');
    // Nothing of the agent's environment (RPS_CONFIG, REDIS_URL, ...).
    expect(result.output).toContain('env HOME,LANG,PATH,TMPDIR\n');
  });

  it.each([
    ['the agent config file', () => ({ act: 'read', path: configFile })],
    ['the agent process environment', () => ({ act: 'read', path: `/proc/${agent.child.pid}/environ` })],
    ['the build cache', () => ({ act: 'read', path: path.join(workDir, 'build-cache.json') })],
    ['a listing of the work dir', () => ({ act: 'list', path: workDir })],
    ['a listing of the other runs', () => ({ act: 'list', path: path.join(workDir, 'runs') })],
  ])('when a job reads %s then it is denied and the run fails with RUN_FAIL', async (_what, params) => {
    const target = params().path;
    const result = await run(params());
    expect(result.status).toBe(RemoteRunState.RUN_FAIL);
    expect(result.output).toMatch(/^Run failed with code 1 and signal null\n/);
    expect(result.output).toContain(`PermissionError: [Errno 13] Permission denied: '${target}'`);
    expectAgentAlive();
  });

  it.each([
    ['the shared build of its task', () => path.join(workDir, 'tasks', String(TASK), 'job.py')],
    ['the build cache', () => path.join(workDir, 'build-cache.json')],
    ['the work dir', () => path.join(workDir, 'planted.txt')],
    ['a system folder', () => '/etc/rps-planted'],
  ])('when a job writes to %s then it is denied and nothing changes', async (_what, target) => {
    const file = target();
    const before = fs.existsSync(file) ? fs.readFileSync(file) : null;
    const result = await run({ act: 'write', path: file });
    expect(result.status).toBe(RemoteRunState.RUN_FAIL);
    expect(result.output).toContain(`PermissionError: [Errno 13] Permission denied: '${file}'`);
    expect(fs.existsSync(file) ? fs.readFileSync(file) : null).toEqual(before);
    expectAgentAlive();
  });

  it('when a job sends SIGKILL to the agent then it is not permitted and the agent lives on', async () => {
    const result = await run({ act: 'kill', pid: agent.child.pid });
    expect(result.status).toBe(RemoteRunState.RUN_FAIL);
    expect(result.output).toContain('PermissionError: [Errno 1] Operation not permitted');
    expectAgentAlive();
  });

  it.each([
    ['memory', { act: 'memory', mb: 1000 }, `Run failed: memory limit of ${LIMITS.memoryMb} MB exceeded`],
    [
      'wall time',
      { act: 'sleep', seconds: 60 },
      `Run failed: wall time limit of ${LIMITS.wallMs} ms exceeded`,
    ],
    ['output', { act: 'flood' }, `Run failed: output limit of ${LIMITS.outputBytes} bytes exceeded`],
    [
      'file size',
      { act: 'bigfile', mb: 3 },
      `Run failed: file size limit of ${LIMITS.fileSizeMb} MB exceeded`,
    ],
  ])(
    'when a job exceeds its %s limit then the run fails with RUN_FAIL naming the limit',
    async (_what, params, reason) => {
      const result = await run(params);
      expect(result.status).toBe(RemoteRunState.RUN_FAIL);
      expect(result.output.split('\n')[0]).toMatch(
        new RegExp(`^${reason.replace(/[()]/g, '\\$&')} \\(ended with `),
      );
      expect(await pool.runs.get(result.runId)).toMatchObject({
        state: 'failed',
        reason: expect.stringContaining(reason),
      });
      expectAgentAlive();
    },
    40_000,
  );

  it('when the attacks are over then the agent takes the next run and no run folder is left', async () => {
    const result = await run({ act: 'none' });
    expect(result.status).toBe(RemoteRunState.SUCCESS);
    expectAgentAlive();
    await waitFor('run folders removed', () => fs.readdirSync(path.join(workDir, 'runs')).length === 0, {
      timeoutMs: 5000, // removed right after each job's end
    });
  });

  it('when the archive holds a device node then the build drops it and the job never sees it', async () => {
    // tar run by root recreates device nodes; a readable node of the disk would expose everything.
    const src = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-task-node-'));
    fs.writeFileSync(path.join(src, 'job.py'), HOSTILE_JOB_PY);
    execFileSync('mknod', [path.join(src, 'node'), 'c', '1', '3']); // what /dev/null is
    fs.chmodSync(path.join(src, 'node'), 0o666);
    execFileSync('tar', ['-cf', path.join(src, 'task.tar'), '-C', src, 'job.py', 'node']);
    const runId = nextRunId++;
    const nodeArchive = fs.readFileSync(path.join(src, 'task.tar'));
    fs.rmSync(src, { recursive: true, force: true });
    await pool.submit(
      runId,
      runBody({ runId, taskId: 81, archive: nodeArchive, params: { act: 'read', path: 'node' } }),
    );
    const final = await waitFor(
      'final status',
      () => ivis.statuses(runId).find((s) => s.status.status !== RemoteRunState.RUNNING),
      {
        timeoutMs: 30_000, // a first build of this task
      },
    );
    expect(final.status.status).toBe(RemoteRunState.RUN_FAIL);
    expect(final.output).toContain("FileNotFoundError: [Errno 2] No such file or directory: 'node'");
    expect(fs.existsSync(path.join(workDir, 'tasks', '81', 'node'))).toBe(false);
  }, 40_000);

  it('when the config file is readable by every user then the agent warns at start', async () => {
    const file = writeAgentConfig('readable', await agentConfig('readable', { runAs: TEST_JOB_USER }));
    fs.chmodSync(file, 0o644);
    const readable = startAgentProcess(file);
    try {
      await waitFor(
        'warning',
        () => readable.logs().includes('is readable by every user, jobs included: chmod 600 it'),
        {
          timeoutMs: 20_000, // a cold Node start on a loaded machine
        },
      );
    } finally {
      readable.child.kill('SIGKILL');
      await readable.exited;
    }
  }, 30_000);

  it.each([
    [
      'the job user is root',
      { runAs: 'root' },
      'agent.executor.runAs: root has uid or gid 0 (root); jobs never run as root',
    ],
    [
      'the job user does not exist',
      { runAs: 'rps-no-such-user' },
      'agent.executor.runAs: user rps-no-such-user does not exist',
    ],
  ])(
    'when %s then the agent refuses to start and says why',
    async (_what, executor, message) => {
      const file = writeAgentConfig(
        `refused-${executor.runAs}`,
        await agentConfig(`refused-${executor.runAs}`, executor),
      );
      const refused = startAgentProcess(file);
      expect(await refused.exited).toBe(1);
      expect(refused.logs()).toContain(`peer-agent failed to start: ${message}`);
    },
    30_000,
  );
});
