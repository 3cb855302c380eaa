import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RemoteRunState, runJobId } from '@rps/common';
import {
  startRedisProxy,
  startRedisServer,
  waitFor,
  type RedisProxy,
  type TestRedisServer,
} from '@rps/common/testing';
import { openPool, startTestAgent, type Pool, type TestAgent } from './support/agent-harness';
import { startFakeIvis, type FakeIvis } from './support/fake-ivis';
import { runBody, testTaskArchive } from './support/tasks';

// An agent under Redis trouble (issue 10): it never starts a run whose
// submit the gateway did not acknowledge, a connection lost in the middle of
// a claim still ends in exactly one execution, and its BullMQ workers pick
// up new runs by themselves after Redis restarts.
describe('peer-agent while Redis fails', () => {
  let server: TestRedisServer;
  let ivis: FakeIvis;
  let pool: Pool;
  let proxy: RedisProxy;
  let agent: TestAgent;
  let markers: string;

  beforeAll(async () => {
    server = await startRedisServer({ appendonly: true });
    ivis = await startFakeIvis();
    pool = await openPool(server.url);
    // The agent reaches Redis through a relay the test can cut; the test itself does not.
    proxy = await startRedisProxy(server.port);
    agent = await startTestAgent(proxy.url, pool, { ivisUrl: ivis.url, capacity: 2 });
    markers = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-markers-'));
    // The jobs write their markers here as the job user (agent.executor.runAs), not as the test's.
    fs.chmodSync(markers, 0o1777);
  });
  afterAll(async () => {
    await agent.stop();
    await pool.close();
    await proxy.close();
    await ivis.close();
    await server.stop();
    fs.rmSync(markers, { recursive: true, force: true });
  });

  const archive = testTaskArchive();
  const executions = (runId: number) => {
    const file = path.join(markers, String(runId));
    // One line per execution, written by the job itself.
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
  };
  const body = (runId: number) =>
    runBody({ runId, taskId: 7, archive, params: { marker: path.join(markers, String(runId)) } });
  const submitPending = async (runId: number) => {
    const raw = Buffer.from(JSON.stringify(body(runId)));
    const result = await pool.runs.submit(runId, raw, { taskId: 7, jobId: 5 }, Date.now(), { pending: true });
    await pool.queue.add(
      'run',
      { runId, execution: result.execution },
      { jobId: runJobId(runId, result.execution) },
    );
    return result.execution;
  };
  const state = async (runId: number) => (await pool.runs.get(runId))?.state;

  it('when a submit is not yet acknowledged then the agent holds the run, and starts it once the gateway acknowledges', async () => {
    const execution = await submitPending(900);
    await waitFor('the agent holding the job', async () =>
      (await pool.queue.getJob(runJobId(900, execution)))?.isActive(),
    );
    expect(await pool.runs.get(900)).toMatchObject({ state: 'queued', peerId: '' });
    expect(await pool.runs.acknowledge(900, execution, 60_000)).toBe('acked');
    await waitFor('run 900 succeeded', async () => (await state(900)) === 'succeeded', { timeoutMs: 20_000 });
    expect(executions(900)).toBe(1);
  });

  it('when a submit is never acknowledged then the agent lets the job go and the run never starts', async () => {
    const execution = await submitPending(901);
    await waitFor(
      'the job handed back',
      async () => (await pool.queue.getJob(runJobId(901, execution)))?.isCompleted(),
      // The agent waits SUBMIT_ACK_WAIT_MS (2.5 s) for the acknowledgement.
      { timeoutMs: 10_000 },
    );
    expect(await pool.runs.get(901)).toMatchObject({ state: 'queued', peerId: '' });
    expect(await pool.runs.get(901)).not.toMatchObject({ pendingSince: '' });
    expect(executions(901)).toBe(0);
  });

  it('when the connection drops right after the dispatch committed then the run still executes exactly once', async () => {
    // The dispatch compare-and-set carries the new state; its reply is lost.
    const cut = proxy.cutAfterReplyTo('dispatched', { refuseMs: 500 });
    await pool.submit(902, body(902));
    await cut;
    await waitFor('run 902 succeeded', async () => (await state(902)) === 'succeeded', { timeoutMs: 20_000 });
    expect(executions(902)).toBe(1);
    // The final push leaves through the outbox and the pushes queue, after the state change.
    await waitFor('SUCCESS of run 902 at IVIS-core', () =>
      ivis.statuses(902).some((s) => s.status.status === RemoteRunState.SUCCESS),
    );
    expect(ivis.statuses(902).map((s) => s.status.status)).toEqual([
      RemoteRunState.RUNNING,
      RemoteRunState.SUCCESS,
    ]);
  });

  it('when Redis restarts then the agent resumes by itself: a run submitted after the restart is executed', async () => {
    await server.restart();
    await pool.submit(903, body(903));
    await waitFor('run 903 succeeded', async () => (await state(903)) === 'succeeded', { timeoutMs: 20_000 });
    expect(executions(903)).toBe(1);
    // And once more, after a second restart (workers are known to stop silently after reconnects).
    await server.restart();
    await pool.submit(904, body(904));
    await waitFor('run 904 succeeded', async () => (await state(904)) === 'succeeded', { timeoutMs: 20_000 });
    expect(executions(904)).toBe(1);
  });
});
