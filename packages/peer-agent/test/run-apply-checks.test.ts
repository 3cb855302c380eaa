import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Queue } from 'bullmq';
import { finalPushJobId, QUEUES, RemoteRunState, runJobId } from '@rps/common';
import { jobReachableTmpDir, startRedisServer, waitFor, type TestRedisServer } from '@rps/common/testing';
import { DEFAULT_AGENT_OPTIONS } from '../src/agent.options';
import {
  DEFAULT_JOB_LIMITS,
  openPool,
  startTestAgent,
  TEST_JOB_USER,
  TEST_PYTHON,
  type Pool,
  type TestAgent,
} from './support/agent-harness';
import { startFakeIvis, type FakeIvis } from './support/fake-ivis';
import { makeArchive, runBody } from './support/tasks';

// The run-apply script refuses a change from an execution or a peer that no
// longer holds the run (packages/common/lua/run-apply-5.lua, ARGV[3] and
// ARGV[4]). These tests show what that means for IVIS-core, through a real
// agent, its job process and its pushes: a late final status of an older
// execution after a resubmit, and a final status from a peer the run was
// taken away from, change neither the record nor what IVIS-core is told.
// Each fails with its check removed from the script (docs/testing.md).

/** A job that runs until the file `params.release` exists. */
const WAITING_JOB_PY = String.raw`
import json, os, sys, time
data = json.loads(sys.stdin.readline())
print("waiting", flush=True)
while not os.path.exists(data["params"]["release"]):
    time.sleep(0.05)
print("released", flush=True)
`;

describe('the run-apply checks seen from IVIS-core', () => {
  let server: TestRedisServer;
  let ivis: FakeIvis;
  let pool: Pool;
  let pushes: Queue;
  let tmp: string;
  const agents: TestAgent[] = [];
  const archive = makeArchive({ 'job.py': WAITING_JOB_PY });

  beforeAll(async () => {
    server = await startRedisServer();
    ivis = await startFakeIvis();
    pool = await openPool(server.url);
    pushes = new Queue(QUEUES.pushes, { connection: pool.redis, prefix: pool.keys.bullPrefix });
    tmp = jobReachableTmpDir('rps-apply-checks-');
  });
  afterEach(async () => {
    for (const agent of agents.splice(0)) await agent.stop();
  });
  afterAll(async () => {
    await pushes.close();
    await pool.close();
    await ivis.close();
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const jobCompleted = (runId: number, execution: number) =>
    waitFor(
      `the agent is done with run ${runId} execution ${execution}`,
      async () => (await (await pool.queue.getJob(runJobId(runId, execution)))?.getState()) === 'completed',
      { timeoutMs: 60_000 },
    );
  /** Nothing of the run waits to reach IVIS-core: no final push recorded or queued, none received. */
  const expectNoFinalPush = async (runId: number, execution: number) => {
    expect(await pool.redis.hlen(pool.keys.pushOutbox())).toBe(0);
    expect(await pushes.getJob(finalPushJobId(runId, execution))).toBeUndefined();
    expect(ivis.statuses(runId).filter((s) => s.status.status !== RemoteRunState.RUNNING)).toEqual([]);
  };

  it('when an older execution ends after a resubmit then its final status reaches neither the record nor IVIS-core', async () => {
    const runId = 301;
    const release = path.join(tmp, 'release-301');
    agents.push(await startTestAgent(server.url, pool, { id: 'peer-a', ivisUrl: ivis.url, capacity: 1 }));
    const body = runBody({ runId, taskId: 31, archive, params: { release } });
    expect(await pool.submit(runId, body)).toBe(1);
    await waitFor(
      'execution 1 running on peer-a',
      async () => (await pool.runs.get(runId))?.state === 'running',
      { timeoutMs: 60_000 },
    );
    // scheduler-sync took peer-a for gone and lost the run; IVIS-core ran it
    // again, and the same peer took execution 2 (another slot of it).
    expect((await pool.runs.apply(runId, 'lose', { execution: 1, peerId: 'peer-a' })).ok).toBe(true);
    const again = await pool.runs.submit(runId, Buffer.from(JSON.stringify(body)), { taskId: 31, jobId: 5 });
    expect(again.execution).toBe(2);
    expect((await pool.runs.apply(runId, 'dispatch', { execution: 2, peerId: 'peer-a' })).ok).toBe(true);
    expect((await pool.runs.apply(runId, 'start', { execution: 2, peerId: 'peer-a' })).ok).toBe(true);
    // Execution 1's job, still alive on peer-a, now ends and reports success.
    fs.writeFileSync(release, '');
    await jobCompleted(runId, 1);
    await expectNoFinalPush(runId, 1);
    expect(await pool.runs.get(runId)).toMatchObject({ state: 'running', execution: 2, peerId: 'peer-a' });
  }, 120_000);

  it('when a peer the run was taken from ends it then its final status reaches neither the record nor IVIS-core', async () => {
    const runId = 302;
    // A package index that holds pip's first request: the build of peer-a is
    // then known to be under way (dispatched to peer-a, not started), and the
    // build fails once the index answers 404.
    let held: http.ServerResponse[] = [];
    let released = false;
    const index = http.createServer((req, res) => {
      if (released) res.writeHead(404).end();
      else held.push(res);
    });
    await new Promise<void>((resolve) => index.listen(0, '127.0.0.1', resolve));
    const indexUrl = `http://127.0.0.1:${(index.address() as AddressInfo).port}/simple`;
    try {
      const workDir = fs.mkdtempSync(path.join(tmp, 'peer-a-'));
      const agent = await startTestAgent(server.url, pool, {
        id: 'peer-a',
        ivisUrl: ivis.url,
        capacity: 1,
        workDir,
        options: { pipArgs: ['--index-url', indexUrl, '--retries', '0', '--timeout', '600'] },
        executor: {
          kind: 'builtin',
          workDir,
          python: TEST_PYTHON,
          subtypes: { blocked: { libs: ['rps-test-held-package'] } },
          buildTimeoutMs: DEFAULT_AGENT_OPTIONS.buildTimeoutMs,
          pipArgs: [],
          ivisWheelDir: null,
          runAs: TEST_JOB_USER,
          allowSameUser: true,
          nice: 10,
          limits: DEFAULT_JOB_LIMITS,
        },
      });
      agents.push(agent);
      const body = runBody({ runId, taskId: 32, archive, subtype: 'blocked', params: { release: '/' } });
      expect(await pool.submit(runId, body)).toBe(1);
      await waitFor('pip of peer-a asks the index', () => held.length > 0, { timeoutMs: 120_000 });
      expect(await pool.runs.get(runId)).toMatchObject({ state: 'dispatched', peerId: 'peer-a' });
      // peer-b's re-delivered job takes the run over, as claimRun does.
      expect((await pool.runs.apply(runId, 'requeue', { execution: 1, peerId: 'peer-a' })).ok).toBe(true);
      expect((await pool.runs.apply(runId, 'dispatch', { execution: 1, peerId: 'peer-b' })).ok).toBe(true);
      released = true;
      for (const res of held) res.writeHead(404).end();
      held = [];
      // peer-a's build fails; its `fail` names peer-a, which no longer holds the run.
      await jobCompleted(runId, 1);
      await expectNoFinalPush(runId, 1);
      expect(ivis.statuses(runId)).toEqual([]);
      expect(await pool.runs.get(runId)).toMatchObject({
        state: 'dispatched',
        execution: 1,
        peerId: 'peer-b',
      });
    } finally {
      index.closeAllConnections();
      await new Promise<void>((resolve) => index.close(() => resolve()));
    }
  }, 180_000);
});
