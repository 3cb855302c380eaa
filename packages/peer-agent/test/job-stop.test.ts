import { RemoteRunState } from '@rps/common';
import { startRedisServer, waitFor, type TestRedisServer } from '@rps/common/testing';
import { processStartTime } from '../src/executors/builtin/job-registry';
import { openPool, startTestAgent, type Pool, type TestAgent } from './support/agent-harness';
import { startFakeIvis, type FakeIvis } from './support/fake-ivis';
import { hostileTaskArchive } from './support/hostile-job';
import { runBody } from './support/tasks';

// A stop must end the job whatever it does with SIGINT: the agent escalates
// to SIGKILL after its grace, and the whole process group goes.
describe('stopping a job that ignores SIGINT', () => {
  const GRACE_MS = 1000;
  let server: TestRedisServer;
  let ivis: FakeIvis;
  let pool: Pool;
  let agent: TestAgent;
  const archive = hostileTaskArchive();
  /** Pids a test expects gone; killed here if they are not, so none outlives the suite. */
  const pids: number[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
    ivis = await startFakeIvis();
    pool = await openPool(server.url);
    agent = await startTestAgent(server.url, pool, {
      ivisUrl: ivis.url,
      options: { stopGraceMs: GRACE_MS },
    });
  });
  afterAll(async () => {
    for (const pid of pids) if (processStartTime(pid) !== null) process.kill(pid, 'SIGKILL');
    await agent.stop();
    await pool.close();
    await ivis.close();
    await server.stop();
  });

  const stop = (runId: number) =>
    pool.redis.xadd(
      pool.keys.peerControl('peer-t'),
      '*',
      'command',
      JSON.stringify({ kind: 'stop', id: `stop-${runId}`, runId, execution: 1 }),
    );
  /** The first number after `label` in the run's stored output, once it is there. */
  const printed = (runId: number, label: string) =>
    waitFor(
      `"${label}" in the output of run ${runId}`,
      async () => {
        const match = new RegExp(`${label} (\\d+)`).exec(await pool.runs.output(runId));
        return match ? Number(match[1]) : undefined;
      },
      { timeoutMs: 20_000 },
    ); // a first build of the task (venv) takes a few seconds
  const finalStatus = (runId: number) =>
    // The grace plus a generous margin for a loaded machine; without escalation it never comes.
    waitFor(
      `final status of run ${runId}`,
      () => ivis.statuses(runId).find((s) => s.status.status !== RemoteRunState.RUNNING),
      { timeoutMs: GRACE_MS + 9000 },
    );

  it('when the job ignores SIGINT then the stop kills it with SIGKILL after the grace and the run ends stopped', async () => {
    await pool.submit(900, runBody({ runId: 900, taskId: 90, archive, params: { act: 'ignore-sigint' } }));
    const pid = await printed(900, 'pid');
    pids.push(pid);
    await waitFor('SIGINT ignored', async () => (await pool.runs.output(900)).includes('ignoring SIGINT'));
    await stop(900);
    const final = await finalStatus(900);
    expect(final.status.status).toBe(RemoteRunState.RUN_FAIL);
    expect(final.output).toMatch(/^Run Cancelled\nRun failed with code null and signal SIGKILL/);
    expect(await pool.runs.get(900)).toMatchObject({ state: 'stopped' });
    expect(processStartTime(pid)).toBeNull();
  }, 40_000);

  it('when the job has a child that ignores SIGINT then a stop ends the child too', async () => {
    await pool.submit(
      901,
      runBody({ runId: 901, taskId: 90, archive, params: { act: 'child-ignores-sigint' } }),
    );
    const child = await printed(901, 'child ready');
    pids.push(child);
    await stop(901);
    const final = await finalStatus(901);
    expect(final.status.status).toBe(RemoteRunState.RUN_FAIL);
    expect(await pool.runs.get(901)).toMatchObject({ state: 'stopped' });
    // The leader died of SIGINT at once; its child must not outlive the run.
    await waitFor('child gone', () => processStartTime(child) === null, { timeoutMs: 2000 });
  }, 40_000);
});
