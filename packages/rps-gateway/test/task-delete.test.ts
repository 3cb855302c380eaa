import { createTestPki, startRedisServer, type TestPki, type TestRedisServer } from '@rps/common/testing';
import { call, controlCommands, registerPeer, startGateway, type TestGateway } from './gateway-harness';

describe('DELETE /rps/task/:task_id', () => {
  let redisServer: TestRedisServer;
  let pki: TestPki;
  let gw: TestGateway;

  beforeAll(async () => {
    pki = createTestPki();
    redisServer = await startRedisServer();
  });
  beforeEach(async () => {
    gw = await startGateway(redisServer.url, pki);
  });
  afterEach(async () => gw.close());
  afterAll(async () => {
    await redisServer.stop();
    pki.cleanup();
  });

  it('when peers are registered then every one that has not been removed gets the command, offline ones included', async () => {
    const longAgo = Date.now() - 3_600_000;
    await registerPeer(gw.redis, gw.keys, 'peer-active', 'active');
    await registerPeer(gw.redis, gw.keys, 'peer-draining', 'draining');
    await registerPeer(gw.redis, gw.keys, 'peer-offline', 'lost', longAgo);
    await registerPeer(gw.redis, gw.keys, 'peer-stopped', 'stopped', longAgo);
    await registerPeer(gw.redis, gw.keys, 'peer-removed', 'removed', longAgo);
    const res = await call(pki, gw.port, '/rps/task/7', { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ peers: 4 });
    for (const peerId of ['peer-active', 'peer-draining', 'peer-offline', 'peer-stopped']) {
      expect(await controlCommands(gw.redis, gw.keys, peerId)).toEqual([
        { kind: 'deleteTask', id: expect.any(String), taskId: 7 },
      ]);
    }
    expect(await gw.redis.exists(gw.keys.peerControl('peer-removed'))).toBe(0);
  });

  it('when no peer is registered then it is still 200 (TV7: IVIS-core does not wait for the answer)', async () => {
    const res = await call(pki, gw.port, '/rps/task/8', { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ peers: 0 });
  });

  it('when a peer id has no record left then no stream is created for it', async () => {
    await gw.redis.zadd(gw.keys.peers(), Date.now(), 'ghost');
    await registerPeer(gw.redis, gw.keys, 'peer-1', 'active');
    expect((await call(pki, gw.port, '/rps/task/9', { method: 'DELETE' })).json()).toEqual({ peers: 1 });
    expect(await gw.redis.exists(gw.keys.peerControl('ghost'))).toBe(0);
  });

  it('when the task id is malformed then it is a 400 naming task_id', async () => {
    const res = await call(pki, gw.port, '/rps/task/07', { method: 'DELETE' });
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ details: [{ path: 'task_id' }] });
  });
});
