import type { Redis } from 'ioredis';
import { closeRedis, createRedis, waitForRedis } from '@rps/common';
import { startRedisServer, testLogger, uniquePrefix, type TestRedisServer } from '@rps/common/testing';

describe('createRedis against a real redis-server', () => {
  let server: TestRedisServer;
  const open: Redis[] = [];
  const connect = async (role: 'request' | 'worker') => {
    const redis = createRedis({ url: server.url, role, name: `test-${role}`, logger: testLogger() });
    open.push(redis);
    await waitForRedis(redis);
    return redis;
  };

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map(closeRedis));
  });
  afterAll(async () => {
    await server.stop();
  });

  it('when Redis is up then both roles answer commands under a unique prefix', async () => {
    const prefix = uniquePrefix();
    const request = await connect('request');
    const worker = await connect('worker');
    await request.set(`${prefix}:a`, '1');
    expect(await worker.get(`${prefix}:a`)).toBe('1');
    expect(await request.client('GETNAME')).toBe('test-request');
  });

  it('when Redis dies then a request-role command fails fast and a worker-role command waits for the restart', async () => {
    const request = await connect('request');
    const worker = await connect('worker');
    await server.kill();
    await new Promise((r) => setTimeout(r, 100));

    // Rejects while the server is still down: it does not wait for the restart below.
    await expect(request.get('x')).rejects.toThrow();

    const pending = worker.set('survives', 'yes');
    await new Promise((r) => setTimeout(r, 300));
    await server.restart();
    await expect(pending).resolves.toBe('OK');
    expect(await worker.get('survives')).toBe('yes');

    await waitForRedis(request);
    expect(await request.get('survives')).toBe('yes');
  });

  it('when Redis never becomes ready then waitForRedis rejects naming the status', async () => {
    const dead = createRedis({
      url: 'redis://127.0.0.1:1/0',
      role: 'worker',
      name: 'dead',
      logger: testLogger(),
    });
    open.push(dead);
    await expect(waitForRedis(dead, 300)).rejects.toThrow(/not ready after 300 ms/);
  });
});
