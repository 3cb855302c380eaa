import { Queue } from 'bullmq';
import request from 'supertest';
import {
  closeRedis,
  createRedis,
  parsePeerRecord,
  peerEventSchema,
  QUEUES,
  type PeerEvent,
} from '@rps/common';
import { startRedisServer, testLogger, waitFor, type TestRedisServer } from '@rps/common/testing';
import { openPool, startTestAgent, type Pool, type TestAgent } from './support/agent-harness';
import { startFakeIvis, type FakeIvis } from './support/fake-ivis';

describe('registration, RPS pushes and the admin app', () => {
  let server: TestRedisServer;
  let ivis: FakeIvis;
  let pool: Pool;
  let agent: TestAgent;
  let pushes: Queue;
  const peerEvents: PeerEvent[] = [];
  let sub: ReturnType<typeof createRedis>;

  beforeAll(async () => {
    server = await startRedisServer();
    ivis = await startFakeIvis();
    pool = await openPool(server.url);
    sub = createRedis({ url: server.url, role: 'worker', name: 'sub', logger: testLogger() });
    await sub.subscribe(pool.keys.peerEvents());
    sub.on('message', (_c, m: string) => peerEvents.push(peerEventSchema.parse(JSON.parse(m))));
    pushes = new Queue(QUEUES.pushes, { connection: pool.redis, prefix: pool.keys.bullPrefix });
    agent = await startTestAgent(server.url, pool, { ivisUrl: ivis.url, capacity: 3 });
  });
  afterAll(async () => {
    await agent.stop();
    await pushes.close();
    await closeRedis(sub);
    await pool.close();
    await ivis.close();
    await server.stop();
  });

  it('when started then the peer record, its heartbeat score and a joined event exist, and heartbeats advance', async () => {
    const record = parsePeerRecord(await pool.redis.hgetall(pool.keys.peer('peer-t')));
    expect(record).toMatchObject({
      id: 'peer-t',
      address: '127.0.0.1',
      capacity: 3,
      executor: 'builtin',
      version: 'test',
      state: 'active',
    });
    await waitFor('joined', () => peerEvents.find((e) => e.type === 'joined' && e.peerId === 'peer-t'));
    const first = Number(await pool.redis.zscore(pool.keys.peers(), 'peer-t'));
    await waitFor(
      'heartbeat',
      async () => Number(await pool.redis.zscore(pool.keys.peers(), 'peer-t')) > first,
    );
    const later = parsePeerRecord(await pool.redis.hgetall(pool.keys.peer('peer-t')));
    expect(later!.heartbeatAt).toBeGreaterThan(record!.heartbeatAt);
    expect(later!.registeredAt).toBe(record!.registeredAt);
  });

  it('when the scheduler marked the peer lost then the next heartbeat brings it back', async () => {
    await pool.redis.hset(pool.keys.peer('peer-t'), 'state', 'lost');
    await waitFor(
      'active again',
      async () => (await pool.redis.hget(pool.keys.peer('peer-t'), 'state')) === 'active',
    );
    await waitFor('rejoined event', () => peerEvents.filter((e) => e.type === 'joined').length >= 2);
  });

  it('when the RPS queues a push then the agent delivers it, retrying a 503', async () => {
    let refusals = 1;
    ivis.respond = (path) =>
      path === '/rest/remote/status' && refusals-- > 0 ? { status: 503, body: {} } : undefined;
    const body = {
      runId: 600,
      status: { status: 2, finished_at: '2026-01-01T00:00:00.000Z' },
      output: 'INFO: Run Cancelled\n',
    };
    const job = await pushes.add(
      'push',
      { kind: 'status', body },
      { attempts: 3, backoff: { type: 'fixed', delay: 100 } },
    );
    await waitFor('delivered', () => ivis.statuses(600)[0]);
    expect(ivis.statuses(600)).toEqual([body]);
    await waitFor('completed', async () => (await job.getState()) === 'completed');
    // One refused attempt, one delivered.
    expect((await pushes.getJob(job.id!))?.attemptsMade).toBe(2);
  });

  it('when IVIS-core answers a push with 400 then the job fails at once, without retries', async () => {
    ivis.respond = (path) => (path === '/rest/remote/emit' ? { status: 400, body: {} } : undefined);
    const job = await pushes.add(
      'push',
      { kind: 'emit', body: { type: 'run/601/stop' } },
      { attempts: 5, backoff: { type: 'fixed', delay: 50 } },
    );
    await waitFor('failed', async () => (await job.getState()) === 'failed');
    expect((await pushes.getJob(job.id!))?.attemptsMade).toBe(1);
    ivis.respond = undefined;
  });

  it('when asked then the admin app answers health, readiness and metrics', async () => {
    await request(agent.service.adminApp).get('/healthz').expect(200);
    await request(agent.service.adminApp)
      .get('/readyz')
      .expect(200, { status: 'ready', checks: { redis: 'ok' } });
    const metrics = await request(agent.service.adminApp).get('/metrics').expect(200);
    expect(metrics.text).toContain('rps_agent_active_runs');
    expect(metrics.text).toContain('rps_agent_push_failures_total{kind="emit",service="peer-agent"} 1');
  });

  it('when stopped cleanly then the peer stays in the pool as stopped, with a left event', async () => {
    const lastBeat = Number(await pool.redis.zscore(pool.keys.peers(), 'peer-t'));
    await agent.stop();
    expect(parsePeerRecord(await pool.redis.hgetall(pool.keys.peer('peer-t')))).toMatchObject({
      state: 'stopped',
      stoppedAt: expect.any(Number),
    });
    // Still a member: durable commands (task deletes) keep being addressed to it.
    expect(Number(await pool.redis.zscore(pool.keys.peers(), 'peer-t'))).toBeGreaterThanOrEqual(lastBeat);
    await waitFor('left', () => peerEvents.find((e) => e.type === 'left' && e.peerId === 'peer-t'));
  });
});
