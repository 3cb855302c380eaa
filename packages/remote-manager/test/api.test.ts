import { startRedisServer, type TestRedisServer } from '@rps/common/testing';
import { pluck, startTestManager, TEST_TOKEN, type TestManager } from './support/manager-harness';

describe('remote-manager API: auth, validation, pool views', () => {
  let server: TestRedisServer;
  let m: TestManager;

  beforeAll(async () => {
    server = await startRedisServer();
    m = await startTestManager(server.url);
  });
  afterAll(async () => {
    await m?.close();
    await server?.stop();
  });

  it('when /api is called without a token then 401 unauthorized; with a wrong one 403 forbidden', async () => {
    const none = await m.api('GET', '/api/peers', undefined, null);
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('unauthorized');
    const wrong = await m.api('GET', '/api/peers', undefined, 'not-the-token-at-all');
    expect(wrong.status).toBe(403);
    expect(wrong.body.code).toBe('forbidden');
    const prefixOnly = await m.api('GET', '/api/peers', undefined, TEST_TOKEN.slice(0, -1));
    expect(prefixOnly.status).toBe(403);
    const basic = await fetch(`${m.url}/api/peers`, { headers: { authorization: `Basic ${TEST_TOKEN}` } });
    expect(basic.status).toBe(401);
  });

  it('when health, metrics and the OpenAPI document are asked for then they answer without a token', async () => {
    expect((await m.api('GET', '/healthz', undefined, null)).status).toBe(200);
    expect((await m.api('GET', '/readyz', undefined, null)).body.status).toBe('ready');
    const metrics = await fetch(`${m.url}/metrics`);
    expect(await metrics.text()).toContain('process_cpu');
    const doc = await m.api('GET', '/openapi.json', undefined, null);
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.body.paths as object)).toEqual(
      expect.arrayContaining([
        '/api/machines',
        '/api/machines/{id}',
        '/api/peers/{id}/drain',
        '/api/runs/{id}',
        '/api/clients',
      ]),
    );
    const create = doc.body.paths['/api/machines'].post;
    expect(create.requestBody.content['application/json'].schema.$ref).toBe(
      '#/components/schemas/CreateMachine',
    );
    expect(doc.body.components.schemas.CreateMachine.required).toEqual(
      expect.arrayContaining(['name', 'address', 'type']),
    );
    expect(create.responses['409'].description).toContain('machine_name_taken');
    const refs = [...JSON.stringify(doc.body).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map(
      (r) => r[1]!,
    );
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) expect(Object.keys(doc.body.components.schemas as object)).toContain(ref);
    expect(JSON.stringify(doc.body)).not.toContain('#/definitions/');
  });

  it('when the pool is empty then peers, runs, machines and queues answer empty lists', async () => {
    expect((await m.api('GET', '/api/peers')).body).toEqual({ peers: [] });
    expect((await m.api('GET', '/api/runs')).body).toEqual({ runs: [] });
    expect((await m.api('GET', '/api/machines')).body).toEqual({ machines: [] });
    const queues = await m.api('GET', '/api/queues');
    expect(pluck(queues.body.queues, 'name').sort()).toEqual(['pushes', 'runs', 'scheduler']);
    expect(queues.body.queues[0]).toMatchObject({ waiting: 0, active: 0, paused: false });
  });

  it('when runs exist then the list filters by state and the detail carries the output tail', async () => {
    const now = Date.now();
    for (const [runId, state] of [
      [11, 'running'],
      [12, 'succeeded'],
    ] as const) {
      await m.redis.hset(m.keys.run(runId), {
        runId: String(runId),
        state,
        execution: '1',
        peerId: 'peer-a',
        taskId: '7',
        jobId: '5',
        createdAt: String(now),
        updatedAt: String(now + runId),
      });
      await m.redis.zadd(m.keys.runIndex(), now + runId, String(runId));
    }
    await m.redis.set(m.keys.runOutput(12), 'line 1\nline 2\n');
    const all = await m.api('GET', '/api/runs');
    expect(pluck(all.body.runs, 'runId')).toEqual([12, 11]);
    const running = await m.api('GET', '/api/runs?state=running');
    expect(running.body.runs).toEqual([
      expect.objectContaining({ runId: 11, state: 'running', peerId: 'peer-a', taskId: 7 }),
    ]);
    const detail = await m.api('GET', '/api/runs/12');
    expect(detail.body.run).toMatchObject({ runId: 12, state: 'succeeded', execution: 1 });
    expect(detail.body.outputTail).toBe('line 1\nline 2\n');
    expect((await m.api('GET', '/api/runs/99')).body.code).toBe('run_not_found');
  });

  it('when input is bad then 400 invalid_request names the problem', async () => {
    const state = await m.api('GET', '/api/runs?state=sleeping');
    expect(state.status).toBe(400);
    expect(state.body.code).toBe('invalid_request');
    expect(state.body.details[0].path).toBe('state');
    const runId = await m.api('GET', '/api/runs/abc');
    expect(runId.status).toBe(400);
    const machine = await m.api('POST', '/api/machines', { name: 'x', address: 'not-an-ip', type: 'manual' });
    expect(machine.status).toBe(400);
    expect(pluck(machine.body.details, 'path')).toContain('address');
    const type = await m.api('POST', '/api/machines', { name: 'x', address: '10.0.0.5', type: 'cloud' });
    expect(type.status).toBe(400);
    expect(type.body.details[0]).toEqual({ path: 'type', message: 'must be one of manual, rjr' });
    const rjr = await m.api('POST', '/api/machines', {
      name: 'x',
      address: '10.0.0.5',
      type: 'rjr',
      parameters: {},
    });
    expect(rjr.status).toBe(400);
    expect(rjr.body.details[0].path).toBe('parameters.url');
    const json = await m.api('POST', '/api/machines', '{not json');
    expect(json.status).toBe(400);
    expect(json.body.code).toBe('entity.parse.failed');
    const unknownRoute = await m.api('GET', '/api/nothing');
    expect(unknownRoute.status).toBe(404);
    expect(unknownRoute.body.code).toBe('not_found');
  });

  it('when a peer is drained or undrained then the command lands on its control stream; an unknown peer is 404', async () => {
    expect((await m.api('POST', '/api/peers/ghost/drain')).status).toBe(404);
    const now = Date.now();
    await m.redis.hset(m.keys.peer('peer-a'), {
      id: 'peer-a',
      address: '127.0.0.1',
      capacity: '2',
      executor: 'builtin',
      state: 'active',
      registeredAt: String(now),
      heartbeatAt: String(now),
    });
    await m.redis.zadd(m.keys.peers(), now, 'peer-a');
    await m.redis.sadd(m.keys.peerRuns('peer-a'), '11');
    const peers = await m.api('GET', '/api/peers');
    expect(peers.body.peers).toEqual([
      expect.objectContaining({ id: 'peer-a', state: 'active', running: 1, capacity: 2, drained: false }),
    ]);
    const drain = await m.api('POST', '/api/peers/peer-a/drain');
    expect(drain.status).toBe(200);
    expect(drain.body).toMatchObject({ peerId: 'peer-a', command: 'drain', acknowledged: false });
    const stream = await m.redis.xrange(m.keys.peerControl('peer-a'), '-', '+');
    expect(JSON.parse(stream[0]![1][1]!)).toEqual({ kind: 'drain', id: drain.body.commandId });
  });

  it('when allowed clients are added and removed then the gateway hash follows, normalised', async () => {
    const fp = 'ab'.repeat(32);
    const add = await m.api('POST', '/api/clients', { name: 'ivis-2', fingerprint256: fp });
    expect(add.status).toBe(201);
    expect(add.body.client.fingerprint256).toBe('AB:'.repeat(32).slice(0, -1));
    expect(JSON.parse((await m.redis.hget(m.keys.gatewayClients(), 'ivis-2'))!)).toEqual({
      fingerprint256: add.body.client.fingerprint256,
    });
    const bySerial = await m.api('POST', '/api/clients', {
      name: 'ivis-3',
      serial: '0x10',
      issuer: 'O = IVIS-core, CN = IVIS-core CA',
    });
    expect(bySerial.body.client).toMatchObject({ serial: '16' });
    const again = await m.api('POST', '/api/clients', { name: 'ivis-2', fingerprint256: fp });
    expect(again.status).toBe(200);
    const bad = await m.api('POST', '/api/clients', { name: 'ivis-4', fingerprint256: 'nope' });
    expect(bad.status).toBe(400);
    expect(bad.body.details[0].path).toBe('fingerprint256');
    const list = await m.api('GET', '/api/clients');
    expect(pluck(list.body.clients, 'name')).toEqual(['ivis-2', 'ivis-3']);
    expect((await m.api('DELETE', '/api/clients/ivis-2')).status).toBe(200);
    expect((await m.api('DELETE', '/api/clients/ivis-2')).body.code).toBe('client_not_found');
    expect(await m.redis.hexists(m.keys.gatewayClients(), 'ivis-2')).toBe(0);
  });
});
