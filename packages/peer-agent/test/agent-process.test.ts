import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Job } from 'bullmq';
import { RemoteRunState, runJobId } from '@rps/common';
import { freePort, startRedisServer, waitFor, type TestRedisServer } from '@rps/common/testing';
import {
  openPool,
  startTestAgent,
  TEST_JOB_USER,
  TEST_PYTHON,
  type Pool,
  type TestAgent,
} from './support/agent-harness';
import { processStartTime } from '../src/executors/builtin/job-registry';
import { buildAgent, startAgentProcess, writeConfig, type AgentProcess } from './support/agent-process';
import { startFakeIvis, type FakeIvis } from './support/fake-ivis';
import { makeWheel, runBody, testTaskArchive } from './support/tasks';

// The agent as a real process (dist/main.js with a config file), killed with
// SIGKILL at the worst moments; the guarantees are checked in Redis and at
// the fake IVIS-core.
describe('agent process crashes', () => {
  let server: TestRedisServer;
  let ivis: FakeIvis;
  let pool: Pool;
  let tmp: string;
  const processes: AgentProcess[] = [];
  /** Job processes a test expects the agent to end; killed here if it did not, so none outlives the suite. */
  const leftovers: number[] = [];
  const agents: TestAgent[] = [];
  const archive = testTaskArchive();

  const configFor = async (id: string, libs: string[]) =>
    writeConfig({
      redis: { url: server.url, prefix: pool.keys.prefix },
      log: { level: 'info' },
      agent: {
        id,
        address: '127.0.0.1',
        capacity: 2,
        admin: { host: '127.0.0.1', port: await freePort() },
        executor: {
          kind: 'builtin',
          workDir: path.join(tmp, id),
          python: TEST_PYTHON,
          subtypes: { __default__: { libs } },
          runAs: TEST_JOB_USER,
          allowSameUser: true,
        },
        ivis: {
          trustedUrlBase: ivis.url,
          sandboxUrlBase: 'http://127.0.0.1:10330',
          es: { host: '127.0.0.1', port: 10328 },
        },
      },
    });
  const spawnAgent = (file: string) => {
    const proc = startAgentProcess(file);
    processes.push(proc);
    return proc;
  };
  const lines = (file: string) =>
    fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n') : [];

  beforeAll(async () => {
    buildAgent();
    server = await startRedisServer();
    ivis = await startFakeIvis();
    pool = await openPool(server.url);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-agent-proc-'));
    // Jobs run as the job user: they pass through tmp to their work dirs and write their markers.
    fs.chmodSync(tmp, 0o711);
    fs.mkdirSync(path.join(tmp, 'markers'));
    fs.chmodSync(path.join(tmp, 'markers'), 0o777);
  }, 120_000);
  afterAll(async () => {
    for (const proc of processes) proc.child.kill('SIGKILL');
    for (const pid of leftovers) {
      try {
        if (processStartTime(pid) !== null) process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const agent of agents) await agent.stop();
    await pool.close();
    await ivis.close();
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('when the agent dies while its run is built but not started then another agent runs it exactly once', async () => {
    // A local wheel makes the build slow enough (venv with pip, then pip) to die in the middle of it.
    const wheel = makeWheel(tmp);
    const marker = path.join(tmp, 'markers', '700');
    const a = spawnAgent(await configFor('peer-a', [wheel]));
    await pool.submit(700, runBody({ runId: 700, taskId: 70, archive, params: { marker } }));
    await waitFor(
      'dispatched to peer-a',
      async () => {
        const record = await pool.runs.get(700);
        return record?.state === 'dispatched' && record.peerId === 'peer-a';
      },
      { timeoutMs: 20_000 },
    );
    await new Promise((r) => setTimeout(r, 1000));
    expect((await pool.runs.get(700))?.state).toBe('dispatched');
    a.child.kill('SIGKILL');
    expect(await a.exited).toBe('SIGKILL');

    const b = await startTestAgent(server.url, pool, { id: 'peer-b', ivisUrl: ivis.url });
    agents.push(b);
    const final = await waitFor(
      'final status',
      () => ivis.statuses(700).find((s) => s.status.status !== RemoteRunState.RUNNING),
      {
        timeoutMs: 45_000,
      },
    );
    expect(final.status.status).toBe(RemoteRunState.SUCCESS);
    expect(ivis.statuses(700).map((s) => s.status.status)).toEqual([
      RemoteRunState.RUNNING,
      RemoteRunState.SUCCESS,
    ]);
    expect(lines(marker)).toHaveLength(1);
    expect(await pool.runs.get(700)).toMatchObject({ state: 'succeeded', peerId: 'peer-b' });
    expect(await pool.redis.smembers(pool.keys.peerRuns('peer-a'))).toEqual([]);
    await b.stop();
  }, 90_000);

  it('when the agent dies while its run is running then the restarted agent reports it failed and never runs it again', async () => {
    const marker = path.join(tmp, 'markers', '701');
    const file = await configFor('peer-c', []);
    const c1 = spawnAgent(file);
    await pool.submit(
      701,
      runBody({ runId: 701, taskId: 71, archive, params: { mode: 'sleep', seconds: 60, marker } }),
    );
    await waitFor('RUNNING pushed', () => ivis.statuses(701).length === 1, { timeoutMs: 20_000 });
    // Output reaches Redis once a second; wait for it so the failure report can carry it.
    await waitFor('output stored', async () => (await pool.runs.output(701)).includes('hello from job 5'));
    c1.child.kill('SIGKILL');
    await c1.exited;
    // The job process outlives its agent (it sleeps, so no broken pipe ends it).
    const pid = Number(/ran (\d+)/.exec(lines(marker)[0] ?? '')?.[1]);
    expect(pid).toBeGreaterThan(0);
    expect(processStartTime(pid)).not.toBeNull();
    leftovers.push(pid);

    const c2 = spawnAgent(file);
    const final = await waitFor('final status', () => ivis.statuses(701)[1], { timeoutMs: 20_000 });
    expect(final.status.status).toBe(RemoteRunState.RUN_FAIL);
    expect(final.output).toMatch(/^agent restarted while the run was running\n\nLog:\nhello from job 5\n/);
    expect(await pool.runs.get(701)).toMatchObject({
      state: 'failed',
      error: 'agent restarted while the run was running',
    });
    // The restarted agent ended the job its earlier life left running.
    await waitFor('orphaned job process ended', () => processStartTime(pid) === null, { timeoutMs: 10_000 });
    await waitFor('fail emit', () => ivis.emits('run/701/fail').length > 0);
    expect(ivis.emits('run/701/fail')).toEqual([
      { type: 'run/701/fail', data: 'agent restarted while the run was running' },
    ]);
    // The dead agent's job comes back once its lock expires; it must be completed without a run.
    await waitFor(
      'job completed',
      async () => (await Job.fromId(pool.queue, runJobId(701, 1)))?.finishedOn !== undefined,
      {
        timeoutMs: 40_000,
      },
    );
    expect(await (await Job.fromId(pool.queue, runJobId(701, 1)))?.getState()).toBe('completed');
    expect(lines(marker)).toHaveLength(1);
    expect(ivis.statuses(701)).toHaveLength(2);

    // SIGTERM: the running job is stopped and reported, the peer is marked stopped, the process exits 0.
    await pool.submit(
      702,
      runBody({ runId: 702, taskId: 71, archive, params: { mode: 'sleep', seconds: 60 } }),
    );
    await waitFor('702 RUNNING', () => ivis.statuses(702).length === 1, { timeoutMs: 20_000 });
    c2.child.kill('SIGTERM');
    expect(await c2.exited).toBe(0);
    const stopped = ivis.statuses(702)[1]!;
    expect(stopped.status.status).toBe(RemoteRunState.RUN_FAIL);
    expect(stopped.output).toMatch(/^Run Cancelled: agent shutting down\n/);
    expect(await pool.runs.get(702)).toMatchObject({ state: 'failed' });
    expect(await pool.redis.hget(pool.keys.peer('peer-c'), 'state')).toBe('stopped');
    expect(await pool.redis.zscore(pool.keys.peers(), 'peer-c')).not.toBeNull();
  }, 120_000);
});
