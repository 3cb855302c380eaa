import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  createTestPki,
  jobReachableTmpDir,
  startRedisServer,
  uniquePrefix,
  type TestPki,
  type TestRedisServer,
} from '@rps/common/testing';
import { startApacheFront, type ApacheFront } from '../../packages/peer-forwarder/test/support/apache';
import { send } from '../../packages/peer-forwarder/test/support/harness';
import { taskArchive } from '../../packages/rps-gateway/test/e2e-processes';
import { PoolProcess, writeLayout, type PoolLayout } from '../chaos/pool';
import { startIvisCoreModel, type IvisCoreModel } from './ivis-core-model';
import { gatewayClient, waitWithLogs } from './support';

// Every test vector of ivis-protocol.md section 8 across the real pool: Redis,
// gateway, forwarder, scheduler-sync and two agents as `node dist/main.js`
// processes (test/chaos/pool.ts); IVIS-core is a model of its app
// (ivis-core-model.ts) behind a real Apache httpd with IVIS's client
// certificate <Location> (trusted route) and one without it (sandbox route).
// IVIS-core's calls go to the public port over mTLS; pushes come from the
// agents and, for the literal vectors, from this test acting as a peer, always
// through the forwarder. The `it`s share the pool and run in order.

const JOB_PY = String.raw`
import hashlib, json, os, sys, time
data = json.loads(sys.stdin.readline())
p = data["params"]
print("step 1", flush=True)
if p.get("release"):
    while not os.path.exists(p["release"]):
        time.sleep(0.05)
    print("padding " + hashlib.sha256(open("padding.bin", "rb").read()).hexdigest(), flush=True)
    print("input " + json.dumps({k: data[k] for k in ("params", "context", "accessToken", "state")}, sort_keys=True, separators=(",", ":")), flush=True)
    os.write(3, (json.dumps({"type": "store_state", "state": {"last": 123}}) + "\n").encode())
    print("stored " + sys.stdin.readline().strip(), flush=True)
    os.write(3, (json.dumps({"type": "create_signals", "signalSets": {"cid": "out", "namespace": 1, "signals": [{"cid": "v", "type": "double", "namespace": 1}]}}) + "\n").encode())
    print("created " + sys.stdin.readline().strip(), flush=True)
if p.get("sleep"):
    time.sleep(p["sleep"])
print("done", flush=True)
`;

// Each wait below is bounded at 60 s or more (a venv build and process starts on a loaded
// 2-core machine); a test holds several, so its own bound is wider than jest's default.
jest.setTimeout(240_000);

/** Job 5 belongs to the pool's executor; job 6 to another executor of the same IVIS-core. */
const POOL_JOB = 5;
const OTHER_EXECUTOR_JOB = 6;

describe('IVIS-core test vectors (ivis-protocol.md 8) end to end through the public port and the forwarder', () => {
  let redis: TestRedisServer;
  let pki: TestPki;
  let model: IvisCoreModel;
  let trusted: ApacheFront;
  let sandbox: ApacheFront;
  let layout: PoolLayout;
  let gateway: ReturnType<typeof gatewayClient>;
  let dir: string;
  let poolSerial: string;
  const processes: PoolProcess[] = [];
  let agents: PoolProcess[] = [];
  const until = waitWithLogs(() => processes, 60_000);
  const padding = Buffer.from(Array.from({ length: 150_000 }, (_, i) => (i * 31 + 7) % 256));
  let archive: number[];

  /** IVIS-core's run body (TV1), with the shared task archive. */
  const runBody = (runId: number, params: Record<string, unknown>, taskId = 7) => ({
    params,
    entities: { signalSets: {}, signals: {} },
    owned: { signalSets: {} },
    type: 'python',
    codeArchive: { type: 'Buffer', data: archive },
    accessToken: 'tok',
    state: null,
    jobId: POOL_JOB,
    runId,
    taskId,
  });
  /** A peer's push through the forwarder's trusted (or sandbox) route, as the literal vectors write it. */
  const push = (
    route: 'trusted' | 'sandbox',
    urlPath: string,
    body: unknown,
    headers: Record<string, string> = {},
  ) =>
    send(layout.routes[route], {
      method: 'POST',
      path: urlPath,
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  const modelRequests = (urlPath: string, match: (body: Record<string, unknown>) => boolean) =>
    model.requests.filter((r) => r.path === urlPath && r.body !== undefined && match(r.body));
  const emitsOf = (runId: number) =>
    modelRequests('/rest/remote/emit', (b) => String(b.type).startsWith(`run/${runId}/`));

  beforeAll(async () => {
    dir = jobReachableTmpDir('rps-vectors-');
    pki = createTestPki();
    poolSerial = BigInt(`0x${new X509Certificate(pki.server.cert).serialNumber}`).toString(10);
    redis = await startRedisServer({ appendonly: true });
    let gatewayPort = 0;
    model = await startIvisCoreModel({
      jobExecutors: new Map([
        [POOL_JOB, poolSerial],
        [OTHER_EXECUTOR_JOB, '4242424242'],
      ]),
      deleteRun: async (runId) => (await gateway.call('DELETE', `/rps/run/${runId}`)).status,
    });
    const modelPort = Number(new URL(model.url).port);
    trusted = await startApacheFront(pki, modelPort);
    sandbox = await startApacheFront(pki, modelPort, { clientCertUnderRestRemote: false });
    layout = await writeLayout({
      dir,
      redis,
      prefix: uniquePrefix('vectors'),
      pki,
      ivisUrl: trusted.url,
      routeUpstreams: { trusted: trusted.url, sandbox: sandbox.url },
      agents: 2,
      capacity: 1,
      heartbeatTimeoutMs: 4000,
    });
    gatewayPort = layout.gatewayPort;
    gateway = gatewayClient(pki, '127.0.0.1', gatewayPort);
    const { adminPorts } = layout;
    for (const kind of ['gateway', 'forwarder', 'scheduler'] as const)
      processes.push(new PoolProcess(kind, kind, layout.rpsConfig, adminPorts[kind]!));
    agents = layout.agentConfigs.map(
      (file, i) => new PoolProcess(`agent-${i + 1}`, 'agent', file, adminPorts[`agent-${i + 1}`]!),
    );
    processes.push(...agents);
    // The padding makes the body well over 100 kB (TV1).
    archive = taskArchive(JOB_PY, { 'padding.bin': padding });
    for (const p of processes) p.start();
    for (const p of processes) await until(`${p.name} ready`, () => p.ready());
    for (const id of [41, 42, 43, 50]) model.addRun(id, POOL_JOB);
    model.addRun(60, OTHER_EXECUTOR_JOB);
    model.addRun(61, POOL_JOB);
  }, 120_000);

  afterAll(async () => {
    for (const p of processes) await p.stop();
    gateway?.destroy();
    await trusted?.stop();
    await sandbox?.stop();
    await model?.close();
    await redis?.stop();
    pki?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const release = () => path.join(dir, 'release-42');

  it('TV1 – dispatch a run: a 150 kB+ body answers 200 with an empty body and reaches the job unchanged', async () => {
    const body = runBody(42, { release: release() });
    expect(JSON.stringify(body).length).toBeGreaterThan(100_000);
    const answer = await gateway.call('POST', '/rps/run/42', body);
    expect(answer).toMatchObject({ status: 200, text: '' });
    await until('run 42 RUNNING at IVIS-core', () => model.runs.get(42)!.history.includes(3));
  });

  it('TV3 – status of a running run: 200 with the RJR status object, no finished_at while running, then the final one', async () => {
    const running = await until('run 42 printed step 1', async () => {
      const answer = await gateway.call('GET', '/rps/run/42');
      const json = answer.json();
      return json.output === 'step 1\n' ? { answer, json } : null;
    });
    expect(running.answer.status).toBe(200);
    expect(running.json).toEqual({ status: 3, output: 'step 1\n', error: '' });
    fs.writeFileSync(release(), '');
    const final = await until('run 42 SUCCESS on the gateway, or deleted after its final push', async () => {
      const answer = await gateway.call('GET', '/rps/run/42');
      if (answer.status === 404) return { deleted: true as const };
      const json = answer.json();
      return json.status === 0 ? { deleted: false as const, json } : null;
    });
    if (!final.deleted) {
      expect(final.json).toMatchObject({ status: 0, error: '', finished_at: expect.any(String) });
      expect(String(final.json.output)).toMatch(/^step 1\n[\s\S]*done\n$/);
    }
    await until('run 42 SUCCESS at IVIS-core', () => model.runs.get(42)!.status === 0);
    // The job saw the body as IVIS-core sent it: the padding's bytes, params, context, token, state.
    const output = model.runs.get(42)!.output;
    expect(output).toContain(`padding ${createHash('sha256').update(padding).digest('hex')}\n`);
    expect(output).toContain(
      `input ${JSON.stringify({ accessToken: 'tok', context: { jobId: POOL_JOB }, params: { release: release() }, state: null })}`,
    );
  });

  it('TV4 – status of an unknown run: 404 with a JSON error', async () => {
    const answer = await gateway.call('GET', '/rps/run/999');
    expect(answer.status).toBe(404);
    expect(answer.json()).toMatchObject({ code: expect.any(String), error: expect.any(String) });
  });

  it('TV5 – stop: a running run answers 200 and ends in a RUN_FAIL push and a stop emit; an unknown run 404', async () => {
    expect((await gateway.call('POST', '/rps/run/43', runBody(43, { sleep: 600 }))).status).toBe(200);
    await until('run 43 RUNNING at IVIS-core', () => model.runs.get(43)!.status === 3);
    expect((await gateway.call('POST', '/rps/run/43/stop', { timeout: 2000 })).status).toBe(200);
    await until('run 43 RUN_FAIL at IVIS-core', () => model.runs.get(43)!.status === 2);
    expect(model.runs.get(43)!.output).toContain('Run Cancelled');
    await until('run/43/stop emit', () => emitsOf(43).some((r) => r.body!.type === 'run/43/stop'));
    expect((await gateway.call('POST', '/rps/run/998/stop', { timeout: 2000 })).status).toBe(404);
  });

  it('TV6 – delete a finished run: IVIS-core deleted it while its final push waited, it is gone, and a delete of an unknown run is 200', async () => {
    expect(model.deletes.filter((d) => d.runId === 42)).toEqual([{ runId: 42, status: 200 }]);
    expect((await gateway.call('GET', '/rps/run/42')).status).toBe(404);
    expect((await gateway.call('DELETE', '/rps/run/42')).status).toBe(200);
    expect((await gateway.call('DELETE', '/rps/run/997')).status).toBe(200);
  });

  it('TV7 – delete a task everywhere: 200 naming the peers, and the task build is gone on both agents', async () => {
    const builds = [1, 2].map((i) => path.join(dir, `agent-${i}`, 'tasks', '7'));
    expect(builds.some((b) => fs.existsSync(b))).toBe(true);
    const answer = await gateway.call('DELETE', '/rps/task/7');
    expect(answer.status).toBe(200);
    expect(answer.json()).toEqual({ peers: 2 });
    await until('task 7 removed on every agent', () => builds.every((b) => !fs.existsSync(b)));
  });

  it('TV8a – peer pushes RUNNING: relayed with the pool certificate, 200 {}, job_runs.status becomes 3', async () => {
    // The agent's push for run 42, as IVIS-core received it.
    const running = modelRequests('/rest/remote/status', (b) => b.runId === 42).find(
      (r) => (r.body!.status as { status: number }).status === 3,
    )!;
    expect(running.answer).toEqual({ status: 200, body: {} });
    expect(running.headers['x-ivis-cert-serial']).toMatch(new RegExp(`^\\{ serialNumber ${poolSerial},`));
    expect(model.runs.get(42)!.history).toEqual([3, 0]);
    // The literal vector from a peer.
    const answer = await push('trusted', '/rest/remote/status', { runId: 50, status: { status: 3 } });
    expect(answer.status).toBe(200);
    expect(answer.json()).toEqual({});
    expect(model.runs.get(50)!.status).toBe(3);
  });

  it('TV8b – peer pushes final SUCCESS: IVIS-core deletes the run on the gateway, then answers 200 {}; status 0, finished_at, output appended', async () => {
    const final = modelRequests('/rest/remote/status', (b) => b.runId === 42).find(
      (r) => (r.body!.status as { status: number }).status === 0,
    )!;
    expect(final.answer).toEqual({ status: 200, body: {} });
    expect(final.body!.status).toMatchObject({
      started_at: expect.any(String),
      finished_at: expect.any(String),
    });
    const row = model.runs.get(42)!;
    expect(row.finishedAt).toEqual(expect.any(String));
    expect(row.output).toBe(`\n${String(final.body!.output)}`);
    expect(row.output).toMatch(/^\nstep 1\n[\s\S]*done\n$/);
    const answer = await push('trusted', '/rest/remote/status', {
      runId: 50,
      status: { started_at: '2023-07-13T21:55:01.000Z', finished_at: '2023-07-13T21:55:21.123Z', status: 0 },
      output: 'step 1\ndone\n',
    });
    expect(answer.status).toBe(200);
    expect(answer.json()).toEqual({});
    expect(model.runs.get(50)).toMatchObject({
      status: 0,
      finishedAt: '2023-07-13T21:55:21.123Z',
      output: '\nstep 1\ndone\n',
    });
    expect(model.deletes).toContainEqual({ runId: 50, status: 200 });
  });

  it('TV9 – output and lifecycle emits: 200 {} each, the output arrives in chunks, a type without a run is 400 {}', async () => {
    const emits = emitsOf(42);
    const output = emits
      .filter((r) => r.body!.type === 'run/42/output')
      .flatMap((r) => r.body!.data as string[])
      .join('');
    expect(output).toMatch(/^step 1\n[\s\S]*done\n$/);
    expect(emits.map((r) => r.body!.type)).toContain('run/42/success');
    expect(emits.every((r) => r.answer.status === 200)).toBe(true);
    const refresh = modelRequests('/rest/remote/emit', (b) => b.type === 'access_token_refresh');
    expect(refresh.map((r) => r.body!.data)).toContainEqual({
      runId: 42,
      jobId: POOL_JOB,
      accessToken: 'tok',
    });
    for (const body of [
      { type: 'run/42/output', data: ['step 1\n', 'step 2\n'] },
      { type: 'run/42/success' },
      { type: 'access_token_refresh', data: { runId: 42, jobId: POOL_JOB, accessToken: 'tok' } },
    ]) {
      const answer = await push('trusted', '/rest/remote/emit', body);
      expect([answer.status, answer.json()]).toEqual([200, {}]);
    }
    const orphan = await push('trusted', '/rest/remote/emit', { type: 'run/undefined/fail' });
    expect([orphan.status, orphan.json()]).toEqual([400, {}]);
  });

  it('TV10 – job requests: the job store_state and create_signals reach IVIS-core and their answers reach the job', async () => {
    expect(model.jobState.get(POOL_JOB)).toEqual({ last: 123 });
    const output = model.runs.get(42)!.output;
    expect(output).toContain('stored {}\n');
    const created = /created (.*)\n/.exec(output)?.[1];
    expect(JSON.parse(created ?? 'null')).toMatchObject({
      out: {
        cid: 'out',
        index: expect.stringMatching(/^signal_set_/),
        signals: { v: { field: expect.any(String) } },
      },
    });
    const store = await push('trusted', '/rest/remote/runRequest', {
      type: 1,
      payload: { jobId: POOL_JOB, request: { type: 'store_state', state: { last: 123 } } },
    });
    expect([store.status, store.json()]).toEqual([200, {}]);
    const sig = await push('trusted', '/rest/remote/runRequest', {
      type: 0,
      payload: {
        jobId: POOL_JOB,
        signalSets: { cid: 'out', namespace: 1, signals: [{ cid: 'v', type: 'double', namespace: 1 }] },
      },
    });
    expect(sig.status).toBe(200);
    expect(sig.json()).toMatchObject({
      out: {
        id: expect.any(Number),
        cid: 'out',
        index: expect.stringMatching(/^signal_set_/),
        signals: { v: { id: expect.any(Number), field: expect.stringMatching(/^s/) } },
      },
    });
  });

  it('TV11 – rejected pushes pass through unchanged: no serial 400, another executor 403, state 1 400, status clash 500', async () => {
    // A forged serial header (even the pool's own) is stripped: on the sandbox route, where
    // IVIS-core's Apache asks for no certificate, the push reaches IVIS-core with no serial.
    const forged = { 'x-ivis-cert-serial': `{ serialNumber ${poolSerial}, issuer rdnSequence:"CN=forged" }` };
    const noSerial = await push(
      'sandbox',
      '/rest/remote/status',
      { runId: 61, status: { status: 3 } },
      forged,
    );
    expect([noSerial.status, noSerial.json()]).toEqual([400, {}]);
    expect(model.requests.at(-1)!.headers['x-ivis-cert-serial']).toBeUndefined();
    const other = await push('trusted', '/rest/remote/status', { runId: 60, status: { status: 3 } });
    expect([other.status, other.json()]).toEqual([403, {}]);
    const badState = await push('trusted', '/rest/remote/status', { runId: 61, status: { status: 1 } });
    expect([badState.status, badState.json()]).toEqual([400, {}]);
    const failed = await push('trusted', '/rest/remote/status', { runId: 61, status: { status: 2 } });
    expect(failed.status).toBe(200);
    const clash = await push('trusted', '/rest/remote/status', { runId: 61, status: { status: 0 } });
    expect([clash.status, clash.json()]).toEqual([500, {}]);
  });

  it('TV2 – dispatch failure: with every peer down the run is still accepted and queued on no peer, a task delete waits for them, and the run starts once a peer is back', async () => {
    // The pool's deliberate difference from the 2023 RPS (DESIGN.md): the gateway never
    // calls a peer, so no peer being reachable is no reason to refuse (or to charge a peer).
    for (const agent of agents) await agent.stop();
    const queued = await gateway.call('POST', '/rps/run/41', runBody(41, {}, 8));
    expect(queued).toMatchObject({ status: 200, text: '' });
    expect((await gateway.call('GET', '/rps/run/41')).json()).toEqual({ status: 4, output: '', error: '' });
    const taskDelete = await gateway.call('DELETE', '/rps/task/8');
    expect([taskDelete.status, taskDelete.json()]).toEqual([200, { peers: 2 }]);
    for (const agent of agents) agent.start();
    await until(
      'run 41 SUCCESS at IVIS-core once the agents are back',
      () => model.runs.get(41)!.status === 0,
      120_000, // two agent starts, then the run's venv build
    );
    expect(model.runs.get(41)!.output).toMatch(/^\nstep 1\ndone\n$/);
  });
});
