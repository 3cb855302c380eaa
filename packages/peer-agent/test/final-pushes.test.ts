import fs from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import pino from 'pino';
import { finalPushJobId, QUEUES, RemoteRunState } from '@rps/common';
import {
  freePort,
  startRedisServer,
  waitFor,
  type TestRedisServer,
  jobReachableTmpDir,
  TEST_PYTHON,
} from '@rps/common/testing';
import { openPool, startTestAgent, type Pool, type TestAgent } from './support/agent-harness';
import { buildAgent, startAgentProcess, writeConfig, type AgentProcess } from './support/agent-process';
import { startFakeIvis, type FakeIvis } from './support/fake-ivis';
import { runBody, testTaskArchive } from './support/tasks';

// A run's final state and its final pushes are one durable unit (push
// outbox + the `pushes` queue): neither a kill right after the final state
// is recorded nor an IVIS-core that is down for longer than the in-process
// retries may lose the final status; a push that is given up says so.
describe('durable final pushes', () => {
  let server: TestRedisServer;
  let ivis: FakeIvis;
  let pool: Pool;
  let pushes: Queue;
  let tmp: string;
  const processes: AgentProcess[] = [];
  const agents: TestAgent[] = [];
  const archive = testTaskArchive();
  const isFinal = (s: { status: { status: number } }) => s.status.status !== RemoteRunState.RUNNING;

  beforeAll(async () => {
    buildAgent();
    server = await startRedisServer();
    ivis = await startFakeIvis();
    pool = await openPool(server.url);
    pushes = new Queue(QUEUES.pushes, { connection: pool.redis, prefix: pool.keys.bullPrefix });
    tmp = jobReachableTmpDir('rps-final-');
  }, 120_000);
  afterAll(async () => {
    await pushes.close();
    await pool.close();
    await ivis.close();
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  // Each test's agents go with it, even when it fails: a leftover agent would take the next
  // test's run from the shared queue, and that test would wait for a push its own agent never makes.
  afterEach(async () => {
    ivis.respond = undefined;
    for (const proc of processes.splice(0)) {
      proc.child.kill('SIGKILL');
      await proc.exited;
    }
    for (const agent of agents.splice(0)) await agent.stop();
  });

  const configFor = async (id: string) =>
    writeConfig({
      redis: { url: server.url, prefix: pool.keys.prefix },
      log: { level: 'info' },
      agent: {
        id,
        address: '127.0.0.1',
        capacity: 1,
        // Short, so a dead agent's outbox entry is due soon; the restarted agent does not wait for it at all.
        finalPushWaitMs: 500,
        admin: { host: '127.0.0.1', port: await freePort() },
        executor: {
          kind: 'builtin',
          workDir: path.join(tmp, id),
          python: TEST_PYTHON,
          allowSameUser: true, // a plain user's run: jobs as that user (root: as rps-job)

          subtypes: { __default__: { libs: [] } },
        },
        ivis: {
          trustedUrlBase: ivis.url,
          sandboxUrlBase: 'http://127.0.0.1:10330',
          es: { host: '127.0.0.1', port: 10328 },
        },
      },
    });

  it('when the agent is killed right after recording a run succeeded then its restart delivers SUCCESS exactly once, after the run outputs', async () => {
    const file = await configFor('peer-k');
    const first = startAgentProcess(file, { RPS_TEST_FAULT: 'kill-after-final-record' });
    processes.push(first);
    await pool.submit(800, runBody({ runId: 800, taskId: 80, archive }));
    expect(await first.exited).toBe('SIGKILL');
    expect(await pool.runs.get(800)).toMatchObject({ state: 'succeeded', peerId: 'peer-k' });
    // Nothing went out and nothing was queued: the outbox alone holds the final pushes.
    expect(ivis.statuses(800).filter(isFinal)).toEqual([]);
    expect(await pushes.getJob(finalPushJobId(800, 1))).toBeUndefined();
    expect(await pool.redis.hexists(pool.keys.pushOutbox(), finalPushJobId(800, 1))).toBe(1);

    const second = startAgentProcess(file);
    processes.push(second);
    // The success emit follows the status in the same job: once it is here, the status was delivered.
    await waitFor('success emit', () => ivis.emits('run/800/success').length > 0, { timeoutMs: 30_000 });
    const finals = ivis.statuses(800).filter(isFinal);
    expect(finals).toHaveLength(1);
    expect(finals[0]).toMatchObject({ runId: 800, status: { status: RemoteRunState.SUCCESS } });
    expect(finals[0]!.output).toContain('hello from job 5');
    // The worker marks the job completed after IVIS-core's answer, so that may still be on its way.
    await waitFor(
      'push job completed',
      async () => {
        return (await (await pushes.getJob(finalPushJobId(800, 1)))?.getState()) === 'completed';
      },
      { timeoutMs: 30_000 },
    );
    expect(await pool.redis.zcard(pool.keys.pushOutboxDue())).toBe(0);
    expect(ivis.emits('run/800/success')).toHaveLength(1);
  }, 120_000);

  it('when IVIS-core refuses the final status for longer than the in-process retries then it is delivered once it answers again', async () => {
    const agent = await startTestAgent(server.url, pool, { id: 'peer-u', ivisUrl: ivis.url });
    agents.push(agent);
    let refused = 0;
    // More refusals than the in-process client's attempts (FAST_OPTIONS: 5): only a durable retry gets through.
    ivis.respond = (p, body) => {
      if (p !== '/rest/remote/status' || body.runId !== 801 || body.status?.status === RemoteRunState.RUNNING)
        return undefined;
      if (refused >= 6) return undefined;
      refused++;
      return { status: 503, body: {} };
    };
    await pool.submit(801, runBody({ runId: 801, taskId: 81, archive }));
    const final = await waitFor('final status of run 801', () => ivis.statuses(801).find(isFinal), {
      timeoutMs: 40_000,
    });
    expect(final.status.status).toBe(RemoteRunState.SUCCESS);
    expect(refused).toBe(6);
    await waitFor('success emit after it', () => ivis.emits('run/801/success').length > 0);
    expect(ivis.statuses(801).filter(isFinal)).toHaveLength(1);
  }, 60_000);

  it('when IVIS-core never accepts the final status then it is given up with an error naming the run and a metric', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const agent = await startTestAgent(server.url, pool, {
      id: 'peer-g',
      ivisUrl: ivis.url,
      logger,
      options: { finalPushRetry: { attempts: 3, backoffMs: 50 } },
    });
    agents.push(agent);
    ivis.respond = (p, body) =>
      p === '/rest/remote/status' && body.runId === 802 && body.status?.status !== RemoteRunState.RUNNING
        ? { status: 503, body: {} }
        : undefined;
    await pool.submit(802, runBody({ runId: 802, taskId: 82, archive }));
    const given = await waitFor(
      'give-up log',
      () =>
        lines
          .map((l) => JSON.parse(l) as { level: number; msg: string; runId?: number; jobId?: string })
          .find((l) => l.msg === 'push given up'),
      { timeoutMs: 30_000 },
    );
    expect(given).toMatchObject({ level: 50, runId: 802, jobId: finalPushJobId(802, 1) });
    const metric = await agent.service.registry.getSingleMetricAsString('rps_pushes_given_up_total');
    expect(metric).toMatch(/rps_pushes_given_up_total\{kind="sequence",service="peer-agent"\} 1/);
    expect(ivis.statuses(802).filter(isFinal)).toEqual([]);
  }, 60_000);
});
