import { RemoteRunState } from '@rps/common';
import { startRedisServer, waitFor, type TestRedisServer } from '@rps/common/testing';
import { openPool, startTestAgent, type Pool, type TestAgent } from './support/agent-harness';
import { startFakeIvis, type FakeIvis } from './support/fake-ivis';
import { runBody, testTaskArchive } from './support/tasks';

describe('capacity', () => {
  let server: TestRedisServer;
  let ivis: FakeIvis;
  let pool: Pool;
  let agent: TestAgent;

  beforeAll(async () => {
    server = await startRedisServer();
    ivis = await startFakeIvis();
    pool = await openPool(server.url);
    agent = await startTestAgent(server.url, pool, { ivisUrl: ivis.url, capacity: 2 });
  });
  afterAll(async () => {
    await agent.stop();
    await pool.close();
    await ivis.close();
    await server.stop();
  });

  it('when more runs than slots arrive then at most capacity run at once and all of them finish', async () => {
    const archive = testTaskArchive();
    const ids = [500, 501, 502, 503, 504];
    for (const runId of ids) {
      await pool.submit(runId, runBody({ runId, taskId: 7, archive, params: { mode: 'sleep', seconds: 1 } }));
    }
    let maxRunning = 0;
    let maxHeld = 0;
    let maxActive = 0;
    const sample = async () => {
      const records = await Promise.all(ids.map((id) => pool.runs.get(id)));
      maxRunning = Math.max(maxRunning, records.filter((r) => r?.state === 'running').length);
      maxHeld = Math.max(maxHeld, await pool.redis.scard(pool.keys.peerRuns('peer-t')));
      maxActive = Math.max(maxActive, agent.service.active.size);
      return records.every((r) => r?.state === 'succeeded');
    };
    await waitFor('all runs done', sample, { timeoutMs: 30_000, intervalMs: 20 });
    expect(maxRunning).toBe(2);
    expect(maxHeld).toBeLessThanOrEqual(2);
    expect(maxActive).toBe(2);
    expect(await pool.redis.scard(pool.keys.peerRuns('peer-t'))).toBe(0);
    const metrics = await waitFor('run metrics', async () => {
      const text = await agent.service.registry.metrics();
      return /rps_agent_runs_total\{outcome="succeeded",service="peer-agent"\} 5/.test(text) && text;
    });
    // The run metric counts the final record; its push leaves through the durable outbox
    // after that, so wait for every final push before checking what IVIS-core got.
    await waitFor('every final push at IVIS-core', () =>
      ids.every((runId) => ivis.statuses(runId).some((s) => s.status.status === RemoteRunState.SUCCESS)),
    );
    for (const runId of ids) {
      expect(ivis.statuses(runId).map((s) => s.status.status)).toEqual([
        RemoteRunState.RUNNING,
        RemoteRunState.SUCCESS,
      ]);
    }
    expect(metrics).toMatch(/rps_agent_capacity\{service="peer-agent"\} 2/);
  });
});
