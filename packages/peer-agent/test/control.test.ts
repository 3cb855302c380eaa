import fs from 'node:fs';
import path from 'node:path';
import {
  CONTROL_GROUP,
  peerEventSchema,
  RemoteRunState,
  type ControlCommand,
  type PeerEvent,
} from '@rps/common';
import { startRedisServer, testLogger, waitFor, type TestRedisServer } from '@rps/common/testing';
import { createRedis, closeRedis } from '@rps/common';
import { openPool, startTestAgent, type Pool, type TestAgent } from './support/agent-harness';
import { startFakeIvis, type FakeIvis } from './support/fake-ivis';
import { runBody, testTaskArchive } from './support/tasks';

// Control commands as the gateway sends them: XADD to the peer's stream, then
// BLPOP the ack list for 5 s.
describe('control commands', () => {
  let server: TestRedisServer;
  let ivis: FakeIvis;
  let pool: Pool;
  let agent: TestAgent;
  const archive = testTaskArchive();
  let seq = 0;

  const send = async (command: ControlCommand) => {
    await pool.redis.xadd(pool.keys.peerControl('peer-t'), '*', 'command', JSON.stringify(command));
    const popped = await pool.redis.blpop(pool.keys.controlAck(command.id), 5);
    expect(popped).not.toBeNull();
    return JSON.parse(popped![1]) as { id: string; peerId: string; ok: boolean; message: string };
  };
  const id = () => `cmd-${++seq}`;
  const stateOf = async (runId: number) => (await pool.runs.get(runId))?.state;

  beforeAll(async () => {
    server = await startRedisServer();
    ivis = await startFakeIvis();
    pool = await openPool(server.url);
    // Sent while the agent is not there yet: the durable stream keeps it.
    await pool.redis.xadd(
      pool.keys.peerControl('peer-t'),
      '*',
      'command',
      JSON.stringify({ kind: 'deleteTask', id: 'early', taskId: 99 }),
    );
    agent = await startTestAgent(server.url, pool, { ivisUrl: ivis.url, capacity: 2 });
  });
  afterAll(async () => {
    await agent.stop();
    await pool.close();
    await ivis.close();
    await server.stop();
  });

  it('when a command was sent while the agent was away then it is handled and acknowledged on start', async () => {
    const popped = await pool.redis.blpop(pool.keys.controlAck('early'), 5);
    expect(JSON.parse(popped![1])).toEqual({
      id: 'early',
      peerId: 'peer-t',
      ok: true,
      message: 'task deleted',
    });
    await waitFor('stream ack', async () => {
      const pending = (await pool.redis.xpending(pool.keys.peerControl('peer-t'), CONTROL_GROUP)) as [number];
      return pending[0] === 0;
    });
  });

  it('when a running run is stopped then the job gets SIGINT, the run ends stopped with RUN_FAIL, fail and stop emits', async () => {
    await pool.submit(
      400,
      runBody({ runId: 400, taskId: 7, archive, params: { mode: 'sleep', seconds: 30 } }),
    );
    await waitFor('running', async () => (await stateOf(400)) === 'running', { timeoutMs: 15_000 });
    await waitFor('RUNNING push', () => ivis.statuses(400).length === 1);
    // Python turns SIGINT into KeyboardInterrupt only once its code runs; on a busy
    // machine "running" can come before that, so wait for the job's first line.
    await waitFor('job output', async () => (await pool.runs.output(400)).includes('hello from job'), {
      timeoutMs: 15_000,
    });
    const ack = await send({ kind: 'stop', id: 'stop-400', runId: 400, execution: 1 });
    expect(ack).toEqual({ id: 'stop-400', peerId: 'peer-t', ok: true, message: 'stopping' });
    const final = await waitFor('final', () => ivis.statuses(400)[1], { timeoutMs: 10_000 });
    expect(final.status.status).toBe(RemoteRunState.RUN_FAIL);
    expect(final.output).toMatch(
      /^Run Cancelled\nRun failed with code -?\d+ and signal \w+|^Run Cancelled\nRun failed with code null and signal SIGINT/,
    );
    expect(final.output).toContain('KeyboardInterrupt');
    const record = await pool.runs.get(400);
    expect(record).toMatchObject({ state: 'stopped' });
    expect(record?.error).toMatch(/^Run Cancelled\n/);
    await waitFor('stop emit', () => ivis.emits('run/400/stop').length === 1);
    const types = ivis.pushes
      .map((p) => String(p.body.type ?? `status:${p.body.status?.status}`))
      .filter((t) => /^run\/400\/(fail|stop)$/.test(t));
    expect(types).toEqual(['run/400/fail', 'run/400/stop']);
  });

  it('when a stop names a run this peer does not hold then the ack says so', async () => {
    expect(await send({ kind: 'stop', id: id(), runId: 4242, execution: 1 })).toMatchObject({
      ok: true,
      message: 'unknown run',
    });
    expect(await send({ kind: 'stop', id: id(), runId: 400, execution: 1 })).toMatchObject({
      ok: true,
      message: 'run already stopped',
    });
  });

  it('when a running run is deleted then it is stopped and nothing more is pushed', async () => {
    await pool.submit(
      401,
      runBody({ runId: 401, taskId: 7, archive, params: { mode: 'sleep', seconds: 30 } }),
    );
    await waitFor('RUNNING push', () => ivis.statuses(401).length === 1, { timeoutMs: 15_000 });
    await pool.runs.delete(401);
    const ack = await send({ kind: 'deleteRun', id: id(), runId: 401 });
    expect(ack).toMatchObject({ ok: true, message: 'run stopped and forgotten' });
    await waitFor('run gone', () => !agent.service.active.has(401), { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 300));
    expect(ivis.statuses(401)).toHaveLength(1);
    expect(
      ivis.pushes.filter(
        (p) => String(p.body.type).startsWith('run/401/') && p.body.type !== 'run/401/output',
      ),
    ).toEqual([]);
    expect(await pool.runs.get(401)).toBeNull();
    expect(await pool.redis.exists(pool.keys.runOutput(401))).toBe(0);
  });

  it('when a task is deleted while its run is running then the delete waits for the run', async () => {
    const taskDir = path.join(agent.workDir, 'tasks', '7');
    await pool.submit(
      402,
      runBody({ runId: 402, taskId: 7, archive, params: { mode: 'sleep', seconds: 1.5 } }),
    );
    await waitFor('running', async () => (await stateOf(402)) === 'running', { timeoutMs: 15_000 });
    const ack = await send({ kind: 'deleteTask', id: id(), taskId: 7 });
    expect(ack).toMatchObject({ ok: true, message: 'task delete deferred until its runs on this peer end' });
    expect(fs.existsSync(taskDir)).toBe(true);
    const success = await waitFor('run success', () => ivis.statuses(402)[1], { timeoutMs: 10_000 });
    expect(success.status.status).toBe(RemoteRunState.SUCCESS);
    await waitFor('task dir removed', () => !fs.existsSync(taskDir));
    const cache = JSON.parse(fs.readFileSync(path.join(agent.workDir, 'build-cache.json'), 'utf8')) as object;
    expect(Object.keys(cache)).not.toContain('7');
  });

  it('when drained then the peer is marked draining, running runs finish and new runs wait', async () => {
    const events: PeerEvent[] = [];
    const sub = createRedis({ url: server.url, role: 'worker', name: 'sub', logger: testLogger() });
    await sub.subscribe(pool.keys.peerEvents());
    sub.on('message', (_c, m: string) => events.push(peerEventSchema.parse(JSON.parse(m))));
    await pool.submit(
      403,
      runBody({ runId: 403, taskId: 7, archive, params: { mode: 'sleep', seconds: 1 } }),
    );
    await waitFor('running', async () => (await stateOf(403)) === 'running', { timeoutMs: 15_000 });
    expect(await send({ kind: 'drain', id: id() })).toMatchObject({ ok: true, message: 'draining' });
    expect(await pool.redis.hget(pool.keys.peer('peer-t'), 'state')).toBe('draining');
    await pool.submit(404, runBody({ runId: 404, taskId: 7, archive }));
    await waitFor('403 done', async () => (await stateOf(403)) === 'succeeded', { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 800));
    expect(await stateOf(404)).toBe('queued');
    // Heartbeats keep the draining state.
    expect(await pool.redis.hget(pool.keys.peer('peer-t'), 'state')).toBe('draining');
    expect(events).toContainEqual(expect.objectContaining({ type: 'draining', peerId: 'peer-t' }));
    await closeRedis(sub);
  });
});
