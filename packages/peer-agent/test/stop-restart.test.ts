import fs from 'node:fs';
import path from 'node:path';
import { PeerAdmin, parsePeerRecord, type ControlCommand } from '@rps/common';
import { startRedisServer, waitFor, type TestRedisServer, jobReachableTmpDir } from '@rps/common/testing';
import { openPool, startTestAgent, type Pool, type TestAgent } from './support/agent-harness';
import { startFakeIvis, type FakeIvis } from './support/fake-ivis';
import { runBody, testTaskArchive } from './support/tasks';

// A peer stopped cleanly and started again with the same id and work dir, as
// an operator does for maintenance: it stays in the pool while stopped, reads
// what accumulated on its stream before it takes runs, and keeps a drain.
describe('agent stopped cleanly and started again', () => {
  let server: TestRedisServer;
  let ivis: FakeIvis;
  let pool: Pool;
  let admin: PeerAdmin;
  let tmp: string;
  const agents: TestAgent[] = [];
  const archive = testTaskArchive();

  const start = async (id: string, workDir: string) => {
    const agent = await startTestAgent(server.url, pool, { id, ivisUrl: ivis.url, workDir });
    agents.push(agent);
    return agent;
  };
  const record = async (id: string) => parsePeerRecord(await pool.redis.hgetall(pool.keys.peer(id)));
  const stateOf = async (runId: number) => (await pool.runs.get(runId))?.state;
  const taskDir = (workDir: string, taskId: number) => path.join(workDir, 'tasks', String(taskId));
  const send = (peerId: string, command: ControlCommand) => admin.send(peerId, command);

  beforeAll(async () => {
    server = await startRedisServer();
    ivis = await startFakeIvis();
    pool = await openPool(server.url);
    admin = new PeerAdmin(pool.redis, pool.keys);
    tmp = jobReachableTmpDir('rps-restart-');
  });
  afterAll(async () => {
    for (const agent of agents) await agent.stop();
    await pool.close();
    await ivis.close();
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('when a task is deleted while the peer is stopped then the restart removes it before taking runs, and other builds stay', async () => {
    const workDir = path.join(tmp, 'peer-s');
    const first = await start('peer-s', workDir);
    for (const [runId, taskId] of [
      [131, 31],
      [132, 32],
    ] as const) {
      await pool.submit(runId, runBody({ runId, taskId, archive }));
    }
    await waitFor(
      'both runs succeeded',
      async () => (await stateOf(131)) === 'succeeded' && (await stateOf(132)) === 'succeeded',
      { timeoutMs: 30_000 },
    );
    expect(fs.existsSync(taskDir(workDir, 31))).toBe(true);
    await first.stop();
    expect(await record('peer-s')).toMatchObject({ state: 'stopped' });

    // What the gateway does for DELETE /rps/task/31 while the peer is away, then a new run of the same task.
    await send('peer-s', { kind: 'deleteTask', id: 'del-31', taskId: 31 });
    await pool.submit(133, runBody({ runId: 133, taskId: 31, archive }));

    const second = await start('peer-s', workDir);
    // start() resolves only once the backlog is carried out, before the run worker fetches.
    expect(fs.existsSync(taskDir(workDir, 31))).toBe(false);
    expect(fs.existsSync(taskDir(workDir, 32))).toBe(true);
    expect(await pool.redis.xpending(pool.keys.peerControl('peer-s'), 'agent')).toEqual([
      0,
      null,
      null,
      null,
    ]);
    // The new run builds task 31 afresh, after the delete: the build is there when it ends.
    await waitFor('run 133 succeeded', async () => (await stateOf(133)) === 'succeeded', {
      timeoutMs: 30_000,
    });
    expect(fs.existsSync(taskDir(workDir, 31))).toBe(true);
    await second.stop();
  }, 90_000);

  it('when drained and restarted then the peer is still draining and takes no run until undrain', async () => {
    const workDir = path.join(tmp, 'peer-d');
    const first = await start('peer-d', workDir);
    await first.service.drain('SIGUSR2');
    await first.stop();
    expect(await record('peer-d')).toMatchObject({ state: 'stopped', drain: true });

    const second = await start('peer-d', workDir);
    expect(await record('peer-d')).toMatchObject({ state: 'draining', drain: true });
    await pool.submit(140, runBody({ runId: 140, taskId: 40, archive }));
    // The only agent is draining: the run waits. 1 s is several fetch rounds of an accepting worker.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await stateOf(140)).toBe('queued');
    // Heartbeats keep the drain.
    expect(await record('peer-d')).toMatchObject({ state: 'draining', drain: true });

    await send('peer-d', { kind: 'undrain', id: 'undrain-1' });
    const ack = await pool.redis.blpop(pool.keys.controlAck('undrain-1'), 5);
    expect(JSON.parse(ack![1])).toMatchObject({ ok: true, message: 'taking runs again' });
    expect(await record('peer-d')).toMatchObject({ state: 'active', drain: false });
    await waitFor('run 140 succeeded', async () => (await stateOf(140)) === 'succeeded', {
      timeoutMs: 30_000,
    });
    await second.stop();
  }, 60_000);

  it('when an operator removes the peer then its stop keeps the removal, a restart takes no run, and after the prune it joins again', async () => {
    const workDir = path.join(tmp, 'peer-r');
    const first = await start('peer-r', workDir);
    expect(await admin.remove('peer-r')).toBe('removed');
    await first.stop();
    expect(await record('peer-r')).toMatchObject({ state: 'removed', removedAt: expect.any(Number) });

    const second = await start('peer-r', workDir);
    expect(await record('peer-r')).toMatchObject({ state: 'removed' });
    await pool.submit(150, runBody({ runId: 150, taskId: 50, archive }));
    // Removed peers keep their member until retention prunes them, and the score is not refreshed.
    const score = Number(await pool.redis.zscore(pool.keys.peers(), 'peer-r'));
    // 1 s: three heartbeat intervals of this agent and several fetch rounds.
    await new Promise((r) => setTimeout(r, 1000));
    expect(Number(await pool.redis.zscore(pool.keys.peers(), 'peer-r'))).toBe(score);
    expect(await stateOf(150)).toBe('queued');
    await second.stop();
    expect(await record('peer-r')).toMatchObject({ state: 'removed' });

    // The operator's `forget` (prune now): the same agent may register again.
    expect(await admin.prune('peer-r', Number.MAX_SAFE_INTEGER)).toBe(true);
    expect(await pool.redis.exists(pool.keys.peer('peer-r'), pool.keys.peerControl('peer-r'))).toBe(0);
    await start('peer-r', workDir);
    expect(await record('peer-r')).toMatchObject({ state: 'active' });
    await waitFor('run 150 succeeded', async () => (await stateOf(150)) === 'succeeded', {
      timeoutMs: 30_000,
    });
  }, 60_000);
});
