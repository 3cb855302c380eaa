import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { RemoteRunState, runJobId } from '@rps/common';
import { startRedisServer, testLogger, waitFor, type TestRedisServer } from '@rps/common/testing';
import { createRedis, closeRedis } from '@rps/common';
import { openPool, startTestAgent, type Pool, type TestAgent } from './support/agent-harness';
import { CREATE_SIG_ANSWER, startFakeIvis, type FakeIvis } from './support/fake-ivis';
import { BINARY_BLOB, makeArchive, runBody, testTaskArchive } from './support/tasks';

// One agent (builtin executor, libs: []) against a real Redis and a fake
// IVIS-core; every run is put in exactly as the gateway does.
describe('builtin executor runs', () => {
  const CAP = 4096;
  let server: TestRedisServer;
  let ivis: FakeIvis;
  let pool: Pool;
  let agent: TestAgent;
  const archive = testTaskArchive();
  let nextRunId = 100;

  beforeAll(async () => {
    server = await startRedisServer();
    ivis = await startFakeIvis();
    pool = await openPool(server.url);
    agent = await startTestAgent(server.url, pool, {
      ivisUrl: ivis.url,
      capacity: 2,
      options: { maxOutputBytes: CAP, pipArgs: ['--no-index'] },
      subtypes: { __default__: { libs: [] }, broken: { libs: ['rps-no-such-library-xyz'] } },
    });
  });
  afterAll(async () => {
    await agent.stop();
    await pool.close();
    await ivis.close();
    await server.stop();
  });

  const finalStatus = (runId: number) =>
    waitFor(
      `final status of run ${runId}`,
      () => ivis.statuses(runId).find((s) => s.status.status !== RemoteRunState.RUNNING),
      {
        timeoutMs: 30_000,
      },
    );

  it('when a python task succeeds then IVIS-core gets RUNNING, output emits, then SUCCESS with the whole output', async () => {
    const runId = nextRunId++;
    const events: string[] = [];
    const sub = createRedis({ url: server.url, role: 'worker', name: 'sub', logger: testLogger() });
    await sub.subscribe(pool.keys.runEvents());
    sub.on('message', (_channel, message: string) =>
      events.push((JSON.parse(message) as { state: string }).state),
    );
    await pool.submit(runId, runBody({ runId, taskId: 7, archive, accessToken: 'tok-1' }));

    const final = await finalStatus(runId);
    expect(final.status.status).toBe(RemoteRunState.SUCCESS);
    expect(final.status.finished_at).toEqual(expect.any(String));
    expect(final.status.started_at).toEqual(expect.any(String));
    expect(final.output).toContain('hello from job 5\n');
    expect(final.output).toContain('done\n');
    const statuses = ivis.statuses(runId);
    expect(statuses.map((s) => s.status.status)).toEqual([RemoteRunState.RUNNING, RemoteRunState.SUCCESS]);
    // Output emits carry each chunk once and arrive before the final status.
    const emitted = ivis
      .emits(`run/${runId}/output`)
      .flatMap((e) => e.data as string[])
      .join('');
    expect(emitted).toBe(final.output);
    // The success emit follows the final status.
    await waitFor('success emit', () => ivis.emits(`run/${runId}/success`).length === 1);
    const order = ivis.pushes.filter(
      (p) => p.body.runId === runId || String(p.body.type).startsWith(`run/${runId}/`),
    );
    expect(order.at(-1)?.body).toEqual({ type: `run/${runId}/success` });
    expect(ivis.emits('access_token_refresh')).toContainEqual({
      type: 'access_token_refresh',
      data: { runId, jobId: 5, accessToken: 'tok-1' },
    });
    // The job got the section 6.2 input: plain HTTP to the forwarder ports.
    expect(final.output).toContain(
      'input {"accessToken": "tok-1", "certs": false, "es": {"host": "127.0.0.1", "port": "10328"}, "server": {"sandboxUrlBase": "http://127.0.0.1:10330", "trustedUrlBase": "' +
        ivis.url +
        '"}, "state": null}',
    );
    const record = await pool.runs.get(runId);
    expect(record).toMatchObject({ state: 'succeeded', peerId: 'peer-t', error: '' });
    expect(await pool.runs.output(runId)).toBe(final.output);
    await waitFor('run events', () => events.includes('succeeded'));
    expect(events).toEqual(['dispatched', 'running', 'succeeded']);
    await closeRedis(sub);
  });

  it('when the job exits non-zero then the run fails with its stderr in the message and RUN_FAIL is pushed', async () => {
    const runId = nextRunId++;
    await pool.submit(runId, runBody({ runId, taskId: 7, archive, params: { mode: 'fail' } }));
    const final = await finalStatus(runId);
    expect(final.status.status).toBe(RemoteRunState.RUN_FAIL);
    const errMsg = 'Run failed with code 3 and signal null\n\nError log:\nboom on stderr\n';
    expect(final.output).toBe(`${errMsg}\n\nLog:\n${await pool.runs.output(runId)}`);
    expect(final.output).toContain('about to fail\n');
    await waitFor('fail emit', () => ivis.emits(`run/${runId}/fail`).length > 0);
    expect(ivis.emits(`run/${runId}/fail`)).toEqual([{ type: `run/${runId}/fail`, data: errMsg }]);
    expect(await pool.runs.get(runId)).toMatchObject({ state: 'failed', error: errMsg });
  });

  it('when the archive is not a tar file then the build fails with a final RUN_FAIL push and no RUNNING', async () => {
    const runId = nextRunId++;
    await pool.submit(
      runId,
      runBody({ runId, taskId: 8, archive: Buffer.from('definitely not a tar archive \xff') }),
    );
    const final = await finalStatus(runId);
    expect(final.status.status).toBe(RemoteRunState.RUN_FAIL);
    expect(final.output).toMatch(/^Remote Build Failed\narchive extraction ended with code 2/);
    expect(ivis.statuses(runId)).toHaveLength(1);
    const failEmit = await waitFor('fail emit', () => ivis.emits(`run/${runId}/fail`)[0]);
    expect(failEmit.data).toMatch(/^Remote Build Failed/);
    expect(await pool.runs.get(runId)).toMatchObject({ state: 'failed', startedAt: '' });
  });

  it('when a library cannot be installed then the build fails and RUN_FAIL is pushed', async () => {
    const runId = nextRunId++;
    await pool.submit(runId, runBody({ runId, taskId: 9, archive, subtype: 'broken' }));
    const final = await finalStatus(runId);
    expect(final.status.status).toBe(RemoteRunState.RUN_FAIL);
    expect(final.output).toContain('library installation ended with code 1');
    expect(final.output).toContain('rps-no-such-library-xyz');
    expect(await pool.runs.get(runId)).toMatchObject({ state: 'failed' });
  });

  it('when the job writes fd-3 requests then IVIS-core gets them as runRequests (TV10) and the answers return', async () => {
    const runId = nextRunId++;
    await pool.submit(runId, runBody({ runId, taskId: 7, archive, params: { mode: 'request' }, jobId: 6 }));
    const final = await finalStatus(runId);
    expect(final.status.status).toBe(RemoteRunState.SUCCESS);
    const requests = ivis.pushes.filter((p) => p.path === '/rest/remote/runRequest').map((p) => p.body);
    expect(requests).toContainEqual({
      type: 1,
      payload: { jobId: 6, request: { type: 'store_state', state: { last: 123 }, id: 7 } },
    });
    expect(requests).toContainEqual({ type: 0, payload: { jobId: 6, signalsSpec: { out: [{ cid: 'v' }] } } });
    expect(final.output).toContain('answer:{"id":7}\n');
    const bad = /^bad:(.*)$/m.exec(final.output ?? '')?.[1] ?? '';
    expect(JSON.parse(bad)).toEqual({ error: expect.stringMatching(/^Request parsing failed: /) });
    expect(final.output).toContain(`created:${JSON.stringify(CREATE_SIG_ANSWER)}\n`);
  });

  it('when the archive holds bytes that are not UTF-8 then the job reads them intact', async () => {
    const runId = nextRunId++;
    await pool.submit(runId, runBody({ runId, taskId: 7, archive, params: { mode: 'binary' } }));
    const final = await finalStatus(runId);
    expect(final.output).toContain(`sha:${createHash('sha256').update(BINARY_BLOB).digest('hex')}\n`);
  });

  it('when the output passes the cap then it is cut there with one notice and one cap emit', async () => {
    const runId = nextRunId++;
    await pool.submit(runId, runBody({ runId, taskId: 7, archive, params: { mode: 'flood' } }));
    const final = await finalStatus(runId);
    expect(final.status.status).toBe(RemoteRunState.SUCCESS);
    const stored = await pool.runs.output(runId);
    expect(stored).toBe(final.output);
    expect(stored.endsWith('INFO: max output storage capacity reached\n')).toBe(true);
    expect(stored.split('INFO: max output storage capacity reached').length).toBe(2);
    expect(
      Buffer.byteLength(stored) - 'INFO: max output storage capacity reached\n'.length,
    ).toBeLessThanOrEqual(CAP);
    expect(Buffer.byteLength(stored)).toBeGreaterThan(CAP - 8);
    expect(stored).not.toContain('\ufffd');
    const capEmits = ivis
      .emits(`run/${runId}/output`)
      .filter((e) => e.data === 'INFO: max output capacity reached');
    expect(capEmits).toHaveLength(1);
  });

  it('when the same task archive comes again then the build is reused', async () => {
    const runId = nextRunId++;
    const stamp = fs.statSync(`${agent.workDir}/tasks/7/.env`).mtimeMs;
    await pool.submit(runId, runBody({ runId, taskId: 7, archive }));
    await finalStatus(runId);
    expect(fs.statSync(`${agent.workDir}/tasks/7/.env`).mtimeMs).toBe(stamp);
    // A changed archive for the same task rebuilds.
    const other = nextRunId++;
    await pool.submit(
      other,
      runBody({ runId: other, taskId: 7, archive: makeArchive({ 'job.py': 'print("v2")\n' }) }),
    );
    const final = await finalStatus(other);
    expect(final.output).toBe('v2\n');
  });
});

describe('builtin executor build deadline', () => {
  let server: TestRedisServer;
  let ivis: FakeIvis;
  let pool: Pool;
  let agent: TestAgent;

  beforeAll(async () => {
    server = await startRedisServer();
    ivis = await startFakeIvis();
    pool = await openPool(server.url);
    // pip waits ~40 s for an unreachable index here; the deadline must end the run long before.
    agent = await startTestAgent(server.url, pool, {
      ivisUrl: ivis.url,
      options: { buildTimeoutMs: 1500 },
      subtypes: { __default__: { libs: ['rps-unreachable-library'] } },
    });
  });
  afterAll(async () => {
    await agent.stop();
    await pool.close();
    await ivis.close();
    await server.stop();
  });

  it('when the build outlives its deadline then it is killed and the run ends with RUN_FAIL', async () => {
    const started = Date.now();
    await pool.submit(300, runBody({ runId: 300, taskId: 30, archive: testTaskArchive() }));
    const final = await waitFor('final status', () => ivis.statuses(300)[0], { timeoutMs: 15_000 });
    expect(final.status.status).toBe(RemoteRunState.RUN_FAIL);
    expect(final.output).toMatch(
      /^Remote Build Failed\n(venv creation|library installation) timed out \(build limit 1500 ms\)/,
    );
    expect(Date.now() - started).toBeLessThan(8000);
    expect(await pool.runs.get(300)).toMatchObject({ state: 'failed' });
  });
  it('when the agent stops while a run is building then the build is aborted and the run goes back to the queue', async () => {
    await pool.submit(301, runBody({ runId: 301, taskId: 31, archive: testTaskArchive() }));
    await waitFor('dispatched', async () => (await pool.runs.get(301))?.state === 'dispatched', {
      timeoutMs: 10_000,
    });
    await agent.stop();
    expect(await pool.runs.get(301)).toMatchObject({ state: 'queued', peerId: '' });
    expect(await (await pool.queue.getJob(runJobId(301, 1)))?.getState()).toBe('waiting');
    expect(ivis.statuses(301)).toEqual([]);
  });
});
