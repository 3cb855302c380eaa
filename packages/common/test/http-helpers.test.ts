import http from 'node:http';
import express from 'express';
import request from 'supertest';
import { z } from 'zod';
import {
  AppError,
  closeRedis,
  closeServer,
  createAdminApp,
  createMetricsRegistry,
  createRedis,
  errorHandler,
  listen,
  notFoundHandler,
  requestContext,
  waitForRedis,
} from '@rps/common';
import { startRedisServer, testLogger, type TestRedisServer } from '@rps/common/testing';

describe('admin app', () => {
  let server: TestRedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('when Redis is reachable then /healthz and /readyz are 200 and /metrics is Prometheus text', async () => {
    const redis = createRedis({ url: server.url, role: 'request', name: 'admin-test', logger: testLogger() });
    try {
      await waitForRedis(redis);
      const registry = createMetricsRegistry('test-service');
      const app = createAdminApp({
        logger: testLogger(),
        registry,
        checks: { redis: async () => void (await redis.ping()) },
      });
      await request(app).get('/healthz').expect(200, { status: 'ok' });
      await request(app)
        .get('/readyz')
        .expect(200, { status: 'ready', checks: { redis: 'ok' } });
      const metrics = await request(app).get('/metrics').expect(200);
      expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
      expect(metrics.text).toMatch(/process_cpu_user_seconds_total\{service="test-service"\}/);
    } finally {
      await closeRedis(redis);
    }
  });

  it('when Redis is down then /readyz is 503 naming the failed check and /healthz stays 200', async () => {
    const redis = createRedis({ url: server.url, role: 'request', name: 'admin-test', logger: testLogger() });
    try {
      const app = createAdminApp({
        logger: testLogger(),
        registry: createMetricsRegistry('t'),
        checks: { redis: async () => void (await redis.ping()) },
      });
      await server.kill();
      const res = await request(app).get('/readyz').expect(503);
      expect(res.body.status).toBe('not ready');
      expect(res.body.checks.redis).toEqual(expect.any(String));
      expect(res.body.checks.redis).not.toBe('ok');
      await request(app).get('/healthz').expect(200);
    } finally {
      await server.restart();
      await closeRedis(redis);
    }
  });

  it('when a check hangs then /readyz reports it as timed out', async () => {
    const app = createAdminApp({
      logger: testLogger(),
      registry: createMetricsRegistry('t'),
      checks: { slow: () => new Promise(() => undefined) },
      checkTimeoutMs: 50,
    });
    const res = await request(app).get('/readyz').expect(503);
    expect(res.body.checks.slow).toBe('timed out after 50 ms');
  });
});

describe('error handling middleware', () => {
  const app = express();
  app.use(requestContext(testLogger()));
  app.use(express.json({ limit: '1kb' }));
  app.post('/zod', (req) => {
    z.object({ jobId: z.number() }).parse(req.body);
  });
  app.get('/app-error', () => {
    throw new AppError('run_not_found', 404, 'run 42 not found');
  });
  app.get('/boom', () => {
    throw new Error('secret internal detail');
  });
  app.get('/async-boom', async () => {
    await Promise.resolve();
    throw new Error('async secret');
  });
  app.use(notFoundHandler());
  app.use(errorHandler(testLogger()));

  it('when zod rejects the body then it is 400 with one detail per problem', async () => {
    const res = await request(app).post('/zod').send({ jobId: 'x' }).expect(400);
    expect(res.body).toEqual({
      error: 'invalid request',
      code: 'invalid_request',
      details: [{ path: 'jobId', message: expect.any(String) }],
    });
  });

  it('when an AppError is thrown then its status, code and message are answered', async () => {
    await request(app)
      .get('/app-error')
      .expect(404, { error: 'run 42 not found', code: 'run_not_found', details: [] });
  });

  it('when an unexpected error is thrown (sync or async) then it is 500 without internals', async () => {
    for (const path of ['/boom', '/async-boom']) {
      const res = await request(app).get(path).expect(500);
      expect(res.body).toEqual({ error: 'internal error', code: 'internal', details: [] });
      expect(JSON.stringify(res.body)).not.toMatch(/secret/);
    }
  });

  it('when the body is not JSON or too large then it is a 4xx JSON naming that', async () => {
    const bad = await request(app)
      .post('/zod')
      .set('content-type', 'application/json')
      .send('{"a":')
      .expect(400);
    expect(bad.body.error).toBe('request body is not valid JSON');
    const big = await request(app)
      .post('/zod')
      .send({ pad: 'x'.repeat(5000) })
      .expect(413);
    expect(big.body.error).toBe('request body is larger than the configured limit');
  });

  it('when no route matches then it is 404 JSON and a request id header is set', async () => {
    const res = await request(app).get('/nope').expect(404);
    expect(res.body.code).toBe('not_found');
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const kept = await request(app).get('/nope').set('x-request-id', 'abc-123').expect(404);
    expect(kept.headers['x-request-id']).toBe('abc-123');
  });
});

describe('listen and closeServer', () => {
  it('when port 0 is asked then a free port is bound, and a taken port rejects', async () => {
    const a = http.createServer((_req, res) => res.end('ok'));
    const address = await listen(a, { host: '127.0.0.1', port: 0 }, testLogger());
    expect(address.port).toBeGreaterThan(0);
    const b = http.createServer();
    await expect(listen(b, { host: '127.0.0.1', port: address.port }, testLogger())).rejects.toThrow(
      /EADDRINUSE/,
    );
    await closeServer(a);
    expect(a.listening).toBe(false);
  });
});
