import { isFinalState, RemoteRunState, toStatusResponse, type ControlCommand } from '@rps/common';
import { startRedisServer, waitFor, type TestRedisServer } from '@rps/common/testing';
import { openPool, startTestAgent, type Pool, type TestAgent } from './support/agent-harness';
import { startFakeIvis, type FakeIvis, type PushBody } from './support/fake-ivis';
import { startFakeRjr, type FakeRjr } from './support/fake-rjr';
import { runBody, testTaskArchive } from './support/tasks';

/** Bound of every wait on a run: a few of the fake runner's 50 ms phases plus the agent's 100 ms polls, with room for a loaded machine. */
const RUN_WAIT = { timeoutMs: 10_000 };

describe('rjr executor against a job runner with the real one’s behaviour', () => {
  let server: TestRedisServer;
  let ivis: FakeIvis;
  let rjr: FakeRjr;
  let pool: Pool;
  let agent: TestAgent;
  const archive = testTaskArchive();
  /** Whether the fake IVIS-core deletes a run when it accepts its final status, as IVIS-core does (2.3). */
  let ivisDeletes = true;
  /** How long the fake IVIS-core takes before that DELETE (IVIS-core's own handling time). */
  let ivisDeleteDelayMs = 0;

  /** What the gateway does on IVIS-core's DELETE /rps/run/:id. */
  const deleteAsGateway = async (runId: number) => {
    const old = await pool.runs.delete(runId);
    if (old?.peerId && !isFinalState(old.state)) {
      const command: ControlCommand = { kind: 'deleteRun', id: `del-${runId}-${Date.now()}`, runId };
      await pool.redis.xadd(pool.keys.peerControl(old.peerId), '*', 'command', JSON.stringify(command));
    }
  };
  /** Final status pushes of the agent (the runner's own carry `?from=rjr`). */
  const agentFinals = (runId: number) => ivis.statuses(runId).filter((s) => s.status.status !== 3);
  const runnerPushes = (runId: number) =>
    ivis.pushes.filter(
      (p) =>
        p.path.endsWith('?from=rjr') &&
        (p.body.runId === runId || String(p.body.type).startsWith(`run/${runId}/`)),
    );
  const gatewayView = async (runId: number) => {
    const record = await pool.runs.get(runId);
    return record ? toStatusResponse(record, await pool.runs.output(runId)) : null;
  };

  beforeAll(async () => {
    server = await startRedisServer();
    ivis = await startFakeIvis();
    ivis.respond = (path: string, body: PushBody) => {
      const final = body.status?.status === 0 || body.status?.status === 2;
      if (ivisDeletes && path.startsWith('/rest/remote/status') && final && body.runId !== undefined) {
        const runId = body.runId;
        setTimeout(() => void deleteAsGateway(runId), ivisDeleteDelayMs);
      }
      return undefined;
    };
    rjr = await startFakeRjr(ivis.url);
    pool = await openPool(server.url);
    agent = await startTestAgent(server.url, pool, {
      ivisUrl: ivis.url,
      // One slot: back-to-back runs share it, as in the observed SQLITE_BUSY race.
      capacity: 1,
      executor: { kind: 'rjr', url: rjr.url },
      // Short, so the unusable-status and unacknowledged-push tests do not wait the defaults.
      options: { rjrUnreachableMs: 1500, rjrFinalAckMs: 800, rjrStopResendMs: 300 },
    });
  });
  afterAll(async () => {
    await agent.stop();
    await pool.close();
    await rjr.close();
    await ivis.close();
    await server.stop();
  });
  afterEach(() => {
    ivisDeletes = true;
    ivisDeleteDelayMs = 0;
    rjr.quirks.rowDelayMs = 0;
    rjr.quirks.deleteMs = 0;
    rjr.quirks.pushReadMs = 0;
  });

  it('when a run succeeds on the job runner then its body went unchanged, state and output are mirrored, and once IVIS-core deletes it the agent pushes nothing', async () => {
    // IVIS-core's DELETE is late here, so the agent's record shows the end first.
    ivisDeletes = false;
    rjr.plan(800, { output: 'step 1\ndone\n' });
    const body = runBody({ runId: 800, taskId: 80, archive, accessToken: 'tok' });
    await pool.submit(800, body);
    await waitFor('succeeded', async () => (await pool.runs.get(800))?.state === 'succeeded', RUN_WAIT);
    expect(await pool.runs.output(800)).toBe('step 1\ndone\n');
    await deleteAsGateway(800);
    await waitFor('row deleted on the runner', () => rjr.calls.includes('DELETE /run/800'), RUN_WAIT);
    expect(rjr.bodies.get(800)?.equals(Buffer.from(JSON.stringify(body)))).toBe(true);
    const pushed = runnerPushes(800).map((p) => String(p.body.status?.status ?? p.body.type));
    expect(pushed.sort()).toEqual(['0', '3', 'run/800/success']);
    expect(agentFinals(800)).toEqual([]);
  });

  it('when two runs share a slot then the second POST waits for the first run’s DELETE (no row lost to SQLITE_BUSY)', async () => {
    rjr.quirks.deleteMs = 300;
    rjr.plan(810, { output: 'one\n' });
    rjr.plan(811, { output: 'two\n' });
    await pool.submit(810, runBody({ runId: 810, taskId: 80, archive }));
    await pool.submit(811, runBody({ runId: 811, taskId: 80, archive }));
    await waitFor(
      'both acknowledged',
      async () => !(await pool.runs.get(810)) && !(await pool.runs.get(811)),
      RUN_WAIT,
    );
    expect(rjr.rowless).toEqual([]);
    expect(agentFinals(811)).toEqual([]);
  });

  it('when the runner answers the POST before it has a row then the early 404s are tolerated', async () => {
    rjr.quirks.rowDelayMs = 600;
    rjr.plan(820, { output: 'late row\n' });
    await pool.submit(820, runBody({ runId: 820, taskId: 80, archive }));
    await waitFor(
      'runner final push',
      () => runnerPushes(820).some((p) => p.body.status?.status === 0),
      RUN_WAIT,
    );
    await waitFor('deleted by IVIS-core', async () => (await pool.runs.get(820)) === null, RUN_WAIT);
    expect(agentFinals(820)).toEqual([]);
  });

  it('when a row of an earlier execution is left on the runner then it is deleted before the POST', async () => {
    rjr.leaveRow(830, { status: 0, output: 'old\n', errMsg: '', finished_at: '2026-01-01T00:00:00.000Z' });
    rjr.plan(830, { output: 'new\n', buildMs: 200 });
    await pool.submit(830, runBody({ runId: 830, taskId: 80, archive }));
    await waitFor(
      'runner final push',
      () => runnerPushes(830).some((p) => p.body.status?.status === 0),
      RUN_WAIT,
    );
    const calls = rjr.calls.filter((c) => c.includes('/run/830'));
    expect(calls.indexOf('DELETE /run/830')).toBeLessThan(calls.indexOf('POST /run/830'));
    expect(runnerPushes(830).find((p) => p.body.status?.status === 0)?.body.output).toBe('new\n');
    await waitFor('deleted by IVIS-core', async () => (await pool.runs.get(830)) === null, RUN_WAIT);
    // The agent did not end the run on the old row's SUCCESS while the runner went on.
    expect(agentFinals(830)).toEqual([]);
  });

  it('when the runner builds before it runs then the gateway answers QUEUED until the runner says RUNNING', async () => {
    ivisDeletes = false;
    rjr.plan(840, { buildMs: 1500, runMs: Infinity, output: 'up\n' });
    await pool.submit(840, runBody({ runId: 840, taskId: 80, archive }));
    await waitFor('row on the runner', () => rjr.rows.has(840), RUN_WAIT);
    await waitFor('handed over', async () => (await pool.runs.get(840))?.state === 'running', RUN_WAIT);
    expect(rjr.phase(840)).toBe('building');
    expect((await gatewayView(840))?.status).toBe(RemoteRunState.QUEUED);
    await waitFor(
      'RUNNING',
      async () => (await gatewayView(840))?.status === RemoteRunState.RUNNING,
      RUN_WAIT,
    );
    expect(rjr.phase(840)).toBe('running');
    const record = await pool.runs.get(840);
    expect(Date.parse(record!.startedAt)).toBeGreaterThanOrEqual(Date.parse(rjr.rows.get(840)!.started_at!));
    await deleteAsGateway(840);
    await waitFor('stopped on the runner', () => rjr.phase(840) === 'over', RUN_WAIT);
  });

  it('when the runner’s final push is lost (it never retries) then the agent pushes the final status once, after rjrFinalAckMs', async () => {
    rjr.plan(850, { output: 'lost push\n', finalPush: 'lost' });
    await pool.submit(850, runBody({ runId: 850, taskId: 80, archive }));
    const final = await waitFor('agent final push', () => agentFinals(850)[0], RUN_WAIT);
    expect(final).toMatchObject({ status: { status: RemoteRunState.SUCCESS }, output: 'lost push\n' });
    await waitFor('deleted by IVIS-core', async () => (await pool.runs.get(850)) === null, RUN_WAIT);
    expect(agentFinals(850)).toHaveLength(1);
  });

  it('when the runner reads its row back before pushing the final status then the agent does not delete the row first', async () => {
    // Longer than the agent's 100 ms poll (so a DELETE right after the agent saw the end wins), shorter than its 500 ms settle.
    rjr.quirks.pushReadMs = 200;
    rjr.plan(890, { output: 'read back\n' });
    await pool.submit(890, runBody({ runId: 890, taskId: 80, archive }));
    await waitFor('deleted by IVIS-core', async () => (await pool.runs.get(890)) === null, RUN_WAIT);
    await waitFor('row deleted on the runner', () => rjr.calls.includes('DELETE /run/890'), RUN_WAIT);
    expect(runnerPushes(890).filter((p) => p.body.status?.status === 0)).toHaveLength(1);
    expect(agentFinals(890)).toEqual([]);
  });

  it('when the job runner fails the build (RUN_FAIL, no finished_at, no error) then the agent pushes the final status itself', async () => {
    rjr.plan(801, { outcome: 'build-fail' });
    await pool.submit(801, runBody({ runId: 801, taskId: 80, archive }));
    const final = await waitFor('final push', () => agentFinals(801)[0], RUN_WAIT);
    expect(final.status.status).toBe(RemoteRunState.RUN_FAIL);
    expect(final.output).toMatch(/^Remote Build Failed\n.*\n\nLog:\n$/s);
    expect(runnerPushes(801).filter((p) => p.path.startsWith('/rest/remote/status'))).toEqual([]);
  });

  it('when a run is stopped while the runner builds it then the runner’s own RUN_FAIL (no finished_at) is not pushed again', async () => {
    // IVIS-core deletes after the agent has seen the end (100 ms polls), within rjrFinalAckMs (800 ms).
    ivisDeleteDelayMs = 400;
    rjr.plan(860, { buildMs: Infinity });
    await pool.submit(860, runBody({ runId: 860, taskId: 80, archive }));
    await waitFor('row on the runner', () => rjr.rows.has(860), RUN_WAIT);
    await waitFor('handed over', async () => (await pool.runs.get(860))?.state === 'running', RUN_WAIT);
    const command: ControlCommand = { kind: 'stop', id: 'rjr-stop-860', runId: 860, execution: 1 };
    await pool.redis.xadd(pool.keys.peerControl('peer-t'), '*', 'command', JSON.stringify(command));
    await waitFor(
      'runner pushed RUN_FAIL',
      () => runnerPushes(860).some((p) => p.body.status?.status === 2),
      RUN_WAIT,
    );
    await waitFor('deleted by IVIS-core', async () => (await pool.runs.get(860)) === null, RUN_WAIT);
    expect(agentFinals(860)).toEqual([]);
  });

  it('when a running run is stopped then the stop reaches the runner, its out-of-order pushes stand, and the run ends stopped', async () => {
    ivisDeletes = false;
    rjr.plan(802, { runMs: Infinity, output: 'working\n' });
    await pool.submit(802, runBody({ runId: 802, taskId: 80, archive }));
    await waitFor(
      'RUNNING',
      async () => (await gatewayView(802))?.status === RemoteRunState.RUNNING,
      RUN_WAIT,
    );
    const command: ControlCommand = { kind: 'stop', id: 'rjr-stop', runId: 802, execution: 1 };
    await pool.redis.xadd(pool.keys.peerControl('peer-t'), '*', 'command', JSON.stringify(command));
    const ack = await pool.redis.blpop(pool.keys.controlAck('rjr-stop'), 5);
    expect(JSON.parse(ack![1])).toMatchObject({ ok: true, message: 'stopping' });
    await waitFor('stopped', async () => (await pool.runs.get(802))?.state === 'stopped', RUN_WAIT);
    expect(rjr.calls).toContain('POST /run/802/stop');
    expect(await pool.runs.output(802)).toBe('working\n');
    expect((await pool.runs.get(802))?.error).toMatch(/Run Cancelled/);
    const types = runnerPushes(802).map((p) => p.body.type ?? `status ${p.body.status?.status}`);
    expect(types.indexOf('run/802/stop')).toBeLessThan(types.indexOf('status 2'));
  });

  it('when a stopped job still ends in SUCCESS on the runner (which pushed SUCCESS) then the run is recorded succeeded, not stopped', async () => {
    ivisDeletes = false;
    rjr.plan(870, { runMs: Infinity, onStop: 'succeed', output: 'caught SIGINT\n' });
    await pool.submit(870, runBody({ runId: 870, taskId: 80, archive }));
    await waitFor(
      'RUNNING',
      async () => (await gatewayView(870))?.status === RemoteRunState.RUNNING,
      RUN_WAIT,
    );
    const command: ControlCommand = { kind: 'stop', id: 'rjr-stop-870', runId: 870, execution: 1 };
    await pool.redis.xadd(pool.keys.peerControl('peer-t'), '*', 'command', JSON.stringify(command));
    await waitFor(
      'runner pushed SUCCESS',
      () => runnerPushes(870).some((p) => p.body.status?.status === 0),
      RUN_WAIT,
    );
    await waitFor(
      'ended',
      async () => isFinalState((await pool.runs.get(870))?.state ?? 'running'),
      RUN_WAIT,
    );
    expect((await pool.runs.get(870))?.state).toBe('succeeded');
    await deleteAsGateway(870);
  });

  it('when the job misses the runner’s SIGINT (still starting) then the agent sends the stop again and the run ends stopped', async () => {
    ivisDeletes = false;
    rjr.plan(880, { runMs: Infinity, onStop: 'miss-first', output: 'starting\n' });
    await pool.submit(880, runBody({ runId: 880, taskId: 80, archive }));
    await waitFor(
      'RUNNING',
      async () => (await gatewayView(880))?.status === RemoteRunState.RUNNING,
      RUN_WAIT,
    );
    const command: ControlCommand = { kind: 'stop', id: 'rjr-stop-880', runId: 880, execution: 1 };
    await pool.redis.xadd(pool.keys.peerControl('peer-t'), '*', 'command', JSON.stringify(command));
    await waitFor('stopped', async () => (await pool.runs.get(880))?.state === 'stopped', RUN_WAIT);
    expect(rjr.calls.filter((c) => c === 'POST /run/880/stop')).toHaveLength(2);
    await deleteAsGateway(880);
  });

  it('when the job runner keeps answering a status the agent cannot read then the run fails after rjrUnreachableMs, naming the problem', async () => {
    rjr.plan(803, { answers: [{ status: 'weird', output: 42 }], runMs: Infinity });
    await pool.submit(803, runBody({ runId: 803, taskId: 80, archive }));
    const final = await waitFor('final push', () => agentFinals(803)[0], RUN_WAIT);
    expect(final.status.status).toBe(RemoteRunState.RUN_FAIL);
    expect(final.output).toMatch(/^job runner status not understood: status: .* \(for 1500 ms\)/s);
  });

  it('when a task is deleted then the job runner is told', async () => {
    const command: ControlCommand = { kind: 'deleteTask', id: 'rjr-task', taskId: 80 };
    await pool.redis.xadd(pool.keys.peerControl('peer-t'), '*', 'command', JSON.stringify(command));
    const ack = await pool.redis.blpop(pool.keys.controlAck('rjr-task'), 5);
    expect(JSON.parse(ack![1])).toMatchObject({ ok: true, message: 'task deleted' });
    expect(rjr.calls).toContain('DELETE /task/80');
  });
});
