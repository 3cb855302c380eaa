import { errorHandler } from '@rps/common';
import { startRedisServer, testLogger, uniquePrefix } from '@rps/common/testing';
import type { TestRedisServer } from '@rps/common/testing';
import { Queue } from 'bullmq';
import express from 'express';
import request from 'supertest';
import { createDashboardRouter, type DashboardDeps } from '../src/dashboard/dashboard.router';

// The dashboard router on its own (the manager's app mounts it the same way):
// the open page, the session that admits a browser to bull-board, bull-board's
// guard and its read-only mode, against BullMQ queues in a real Redis.

const TOKEN = 'dashboard-test-token-0123456789';

describe('dashboard router: page, session and bull-board guard', () => {
  let redis: TestRedisServer;
  let queues: Queue[];

  beforeAll(async () => {
    redis = await startRedisServer();
    const prefix = `${uniquePrefix('dash')}:bull`;
    const connection = { url: redis.url };
    queues = ['runs', 'pushes'].map((name) => new Queue(name, { connection, prefix }));
    await queues[1]!.add('push', { n: 1 });
  });

  afterAll(async () => {
    for (const q of queues ?? []) await q.close();
    await redis?.stop();
  });

  const app = (over: Partial<DashboardDeps> = {}) =>
    express()
      .use(createDashboardRouter({ queues, readOnly: true, apiPrefix: '/api', token: TOKEN, ...over }))
      .use(errorHandler(testLogger()));
  const signIn = async (a: express.Express) => {
    const res = await request(a).post('/dashboard/session').set('authorization', `Bearer ${TOKEN}`);
    expect(res.status).toBe(200);
    const cookie = ([] as string[]).concat(res.headers['set-cookie'] ?? [])[0]!;
    return cookie.split(';')[0]!;
  };

  it('when the page is fetched without a token then it is served, with a strict CSP and no data', async () => {
    const res = await request(app()).get('/');
    expect(res.status).toBe(200);
    expect(res.text).toContain('<title>RPS pool dashboard</title>');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.headers['content-security-policy']).not.toContain('unsafe-inline');
    const config = await request(app()).get('/dashboard/config.json');
    expect(config.body).toEqual({
      apiPrefix: '/api',
      queuesPath: '/queues/',
      sessionPath: '/dashboard/session',
      readOnly: true,
    });
    expect((await request(app()).get('/dashboard/view.js')).status).toBe(200);
  });

  it('when a session is asked without, with a wrong or with the right token then 401, 403, then a scoped cookie', async () => {
    const none = await request(app()).post('/dashboard/session');
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('unauthorized');
    const wrong = await request(app())
      .post('/dashboard/session')
      .set('authorization', 'Bearer not-the-token-at-all');
    expect(wrong.status).toBe(403);
    expect(wrong.headers['set-cookie']).toBeUndefined();
    const ok = await request(app()).post('/dashboard/session').set('authorization', `Bearer ${TOKEN}`);
    const cookie = String(ok.headers['set-cookie']);
    expect(cookie).toMatch(
      /^rps_dashboard=\d+\.[\w-]+; Path=\/queues; Max-Age=\d+; HttpOnly; SameSite=Strict$/,
    );
    expect(cookie).not.toContain(TOKEN);
  });

  it('when bull-board is opened without a session then its page redirects to sign-in and its API answers 401', async () => {
    const page = await request(app()).get('/queues/');
    expect(page.status).toBe(303);
    expect(page.headers.location).toBe('/?signin=%2Fqueues');
    const api = await request(app()).get('/queues/api/queues');
    expect(api.status).toBe(401);
    const forged = await request(app())
      .get('/queues/api/queues')
      .set('cookie', 'rps_dashboard=99999999999999.AAAA');
    expect(forged.status).toBe(401);
  });

  it('when bull-board is opened with the session or the bearer token then it lists the queues, read-only', async () => {
    const a = app();
    const cookie = await signIn(a);
    const page = await request(a).get('/queues/').set('cookie', cookie);
    expect(page.status).toBe(200);
    expect(page.text).toContain('<base href="/queues/"');
    const viaCookie = await request(a).get('/queues/api/queues').set('cookie', cookie);
    expect(viaCookie.status).toBe(200);
    const listed = viaCookie.body.queues as Array<{ name: string; readOnlyMode: boolean }>;
    expect(listed.map((q) => q.name).sort()).toEqual(['pushes', 'runs']);
    expect(listed.every((q) => q.readOnlyMode)).toBe(true);
    const viaBearer = await request(a).get('/queues/api/queues').set('authorization', `Bearer ${TOKEN}`);
    expect(viaBearer.status).toBe(200);
    // Read-only: bull-board refuses an action even with a valid session.
    const empty = await request(a).put('/queues/api/queues/pushes/empty').set('cookie', cookie);
    expect(empty.status).toBe(405);
    expect(await queues[1]!.getWaitingCount()).toBe(1);
  });

  it('when actions are allowed then a same-origin action works and a cross-origin one is refused', async () => {
    const a = app({ readOnly: false });
    const cookie = await signIn(a);
    const cross = await request(a)
      .put('/queues/api/queues/pushes/empty')
      .set('cookie', cookie)
      .set('origin', 'http://evil.example');
    expect(cross.status).toBe(403);
    expect(await queues[1]!.getWaitingCount()).toBe(1);
    const same = await request(a).put('/queues/api/queues/pushes/empty').set('cookie', cookie);
    expect(same.status).toBe(200);
    expect(await queues[1]!.getWaitingCount()).toBe(0);
  });

  it('when the session has expired or the token changed then bull-board refuses it', async () => {
    let now = Date.now();
    const a = app({ now: () => now });
    const cookie = await signIn(a);
    now += 13 * 60 * 60 * 1000; // past SESSION_TTL_MS (12 h)
    expect((await request(a).get('/queues/api/queues').set('cookie', cookie)).status).toBe(401);
    const rotated = app({ token: `${TOKEN}-rotated` });
    expect(
      (
        await request(rotated)
          .get('/queues/api/queues')
          .set('cookie', await signIn(app()))
      ).status,
    ).toBe(401);
  });

  it('when the manager has no token then bull-board is closed to everyone', async () => {
    const a = app({ token: null });
    expect((await request(a).post('/dashboard/session').set('authorization', `Bearer ${TOKEN}`)).status).toBe(
      401,
    );
    expect((await request(a).get('/queues/api/queues').set('authorization', `Bearer ${TOKEN}`)).status).toBe(
      401,
    );
  });
});
