import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RemoteRunState, type ControlCommand } from '@rps/common';
import { startRedisServer, waitFor, type TestRedisServer } from '@rps/common/testing';
import { openPool, startTestAgent, type Pool, type TestAgent } from './support/agent-harness';
import { startFakeIvis, type FakeIvis } from './support/fake-ivis';
import { runBody, testTaskArchive } from './support/tasks';

interface FakeRun {
  body: Buffer;
  polls: number;
  /** Answers of GET /run/:id in turn; the last one repeats. */
  script: object[];
}

/** A stand-in for an IVIS job runner (ivis-protocol.md 1.6). */
async function startFakeRjr() {
  const runs = new Map<number, FakeRun>();
  const calls: string[] = [];
  let nextScript: object[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      calls.push(`${req.method} ${req.url}`);
      const match = /^\/(run|task)\/(\d+)(\/stop)?$/.exec(req.url ?? '');
      const id = Number(match?.[2]);
      const run = runs.get(id);
      if (req.method === 'POST' && match?.[1] === 'run' && !match[3]) {
        runs.set(id, { body: Buffer.concat(chunks), polls: 0, script: nextScript });
        res.writeHead(200).end();
      } else if (req.method === 'GET' && run) {
        const answer = run.script[Math.min(run.polls++, run.script.length - 1)];
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      } else if (req.method === 'POST' && match?.[3] && run) {
        run.script = [
          { status: 2, output: 'partial\n', error: 'Run Cancelled\n', finished_at: new Date().toISOString() },
        ];
        res.writeHead(200).end();
      } else if (req.method === 'DELETE') {
        res.writeHead(200).end();
      } else {
        res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    runs,
    calls,
    script: (answers: object[]) => {
      nextScript = answers;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('rjr executor', () => {
  let server: TestRedisServer;
  let ivis: FakeIvis;
  let rjr: Awaited<ReturnType<typeof startFakeRjr>>;
  let pool: Pool;
  let agent: TestAgent;
  const archive = testTaskArchive();

  beforeAll(async () => {
    server = await startRedisServer();
    ivis = await startFakeIvis();
    rjr = await startFakeRjr();
    pool = await openPool(server.url);
    agent = await startTestAgent(server.url, pool, {
      ivisUrl: ivis.url,
      executor: { kind: 'rjr', url: rjr.url },
      // Short, so the unusable-status test does not wait the default 30 s.
      options: { rjrUnreachableMs: 1500 },
    });
  });
  afterAll(async () => {
    await agent.stop();
    await pool.close();
    await rjr.close();
    await ivis.close();
    await server.stop();
  });

  it('when a run succeeds on the job runner then its body went unchanged, output and state are mirrored, and the agent pushes nothing', async () => {
    rjr.script([
      { status: 3, output: 'step 1\n', error: '' },
      { status: 0, output: 'step 1\ndone\n', error: '', finished_at: '2026-01-01T00:00:00.000Z' },
    ]);
    const body = runBody({ runId: 800, taskId: 80, archive, accessToken: 'tok' });
    await pool.submit(800, body);
    await waitFor('succeeded', async () => (await pool.runs.get(800))?.state === 'succeeded', {
      timeoutMs: 10_000,
    });
    expect(rjr.runs.get(800)?.body.equals(Buffer.from(JSON.stringify(body)))).toBe(true);
    expect(await pool.runs.output(800)).toBe('step 1\ndone\n');
    await waitFor('run deleted on the runner', () => rjr.calls.includes('DELETE /run/800'));
    // The job runner pushes to IVIS-core itself.
    expect(ivis.pushes).toEqual([]);
  });

  it('when the job runner fails the build (RUN_FAIL without finished_at) then the agent pushes the final status itself', async () => {
    rjr.script([{ status: 2, output: '', error: 'Remote Build Failed\nno such lib' }]);
    await pool.submit(801, runBody({ runId: 801, taskId: 80, archive }));
    const final = await waitFor('final push', () => ivis.statuses(801)[0], { timeoutMs: 10_000 });
    expect(final.status.status).toBe(RemoteRunState.RUN_FAIL);
    expect(final.output).toBe('Remote Build Failed\nno such lib\n\nLog:\n');
    expect(await pool.runs.get(801)).toMatchObject({
      state: 'failed',
      error: 'Remote Build Failed\nno such lib',
    });
  });

  it('when a running run is stopped then the stop reaches the job runner and the run ends stopped', async () => {
    rjr.script([{ status: 3, output: 'working\n', error: '' }]);
    await pool.submit(802, runBody({ runId: 802, taskId: 80, archive }));
    await waitFor('running', async () => (await pool.runs.get(802))?.state === 'running', {
      timeoutMs: 10_000,
    });
    const command: ControlCommand = { kind: 'stop', id: 'rjr-stop', runId: 802, execution: 1 };
    await pool.redis.xadd(pool.keys.peerControl('peer-t'), '*', 'command', JSON.stringify(command));
    const ack = await pool.redis.blpop(pool.keys.controlAck('rjr-stop'), 5);
    expect(JSON.parse(ack![1])).toMatchObject({ ok: true, message: 'stopping' });
    await waitFor('stopped', async () => (await pool.runs.get(802))?.state === 'stopped', {
      timeoutMs: 10_000,
    });
    expect(rjr.calls).toContain('POST /run/802/stop');
    expect(await pool.runs.output(802)).toBe('partial\n');
    expect(ivis.statuses(802)).toEqual([]);
  });

  it('when the job runner keeps answering a status the agent cannot read then the run fails after rjrUnreachableMs, naming the problem', async () => {
    rjr.script([{ status: 'weird', output: 42 }]);
    await pool.submit(803, runBody({ runId: 803, taskId: 80, archive }));
    const final = await waitFor('final push', () => ivis.statuses(803)[0], { timeoutMs: 10_000 });
    expect(final.status.status).toBe(RemoteRunState.RUN_FAIL);
    const record = await pool.runs.get(803);
    expect(record).toMatchObject({ state: 'failed' });
    expect(record?.error).toMatch(/^job runner status not understood: status: .* \(for 1500 ms\)$/s);
    expect(rjr.runs.get(803)!.polls).toBeGreaterThan(3);
  });

  it('when a task is deleted then the job runner is told', async () => {
    const command: ControlCommand = { kind: 'deleteTask', id: 'rjr-task', taskId: 80 };
    await pool.redis.xadd(pool.keys.peerControl('peer-t'), '*', 'command', JSON.stringify(command));
    const ack = await pool.redis.blpop(pool.keys.controlAck('rjr-task'), 5);
    expect(JSON.parse(ack![1])).toMatchObject({ ok: true, message: 'task deleted' });
    expect(rjr.calls).toContain('DELETE /task/80');
  });
});
