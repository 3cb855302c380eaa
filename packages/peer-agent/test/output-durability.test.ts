import { startRedisServer, waitFor, type TestRedisServer } from '@rps/common/testing';
import { openPool, startTestAgent, type Pool, type TestAgent } from './support/agent-harness';
import { startFakeIvis, type FakeIvis } from './support/fake-ivis';
import { runBody, testTaskArchive } from './support/tasks';

// Output the agent has read from a job is in Redis at once, not at the next
// emit period: an agent killed then loses (nearly) nothing of it.
describe('job output in Redis', () => {
  let server: TestRedisServer;
  let ivis: FakeIvis;
  let pool: Pool;
  let agent: TestAgent;

  beforeAll(async () => {
    server = await startRedisServer();
    ivis = await startFakeIvis();
    pool = await openPool(server.url);
    agent = await startTestAgent(server.url, pool, {
      id: 'peer-o',
      ivisUrl: ivis.url,
      // An emit period far longer than the test: storing must not wait for it.
      options: { outputFlushMs: 10 * 60_000 },
    });
  });
  afterAll(async () => {
    await agent.stop();
    await pool.close();
    await ivis.close();
    await server.stop();
  });

  it('when a running job prints then the line is stored before the emit period is over, while the job still runs', async () => {
    await pool.submit(
      900,
      runBody({ runId: 900, taskId: 90, archive: testTaskArchive(), params: { mode: 'sleep', seconds: 60 } }),
    );
    await waitFor('output stored', async () => (await pool.runs.output(900)).includes('hello from job 5\n'), {
      timeoutMs: 30_000,
    });
    expect((await pool.runs.get(900))?.state).toBe('running');
    // Emitting to IVIS-core keeps its own (here: very long) period.
    expect(ivis.emits('run/900/output')).toEqual([]);
    agent.service.active.requestStop(900, 'stop');
    await waitFor('run stopped', async () => (await pool.runs.get(900))?.state === 'stopped', {
      timeoutMs: 20_000,
    });
  }, 60_000);
});
