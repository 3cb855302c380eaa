import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import {
  closeRedis,
  closeServer,
  createMetricsRegistry,
  createRedis,
  createRedisKeys,
  QUEUES,
  waitForRedis,
  type RedisKeys,
} from '@rps/common';
import { testLogger, uniquePrefix } from '@rps/common/testing';
import type { Redis } from 'ioredis';
import { createApp, type ManagerApp, type ManagerDeps } from '../../src/app';
import { localCaBackend } from '../../src/services/ca-backend';

export const TEST_TOKEN = 'test-token-0123456789abcdef';

/** A manager on a real socket against a real Redis, under its own prefix. */
export interface TestManager {
  url: string;
  manager: ManagerApp;
  redis: Redis;
  keys: RedisKeys;
  caDir: string;
  queues: Queue[];
  /** fetch against the manager with the test token. */

  api(
    method: string,
    route: string,
    body?: unknown,
    token?: string | null,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read answers field by field
  ): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export async function startTestManager(
  redisUrl: string,
  overrides: Partial<ManagerDeps> & { prefix?: string } = {},
): Promise<TestManager> {
  const logger = testLogger();
  const keys = createRedisKeys(overrides.prefix ?? uniquePrefix('mgr'));
  const redis = createRedis({ url: redisUrl, role: 'request', name: 'test-manager', logger });
  await waitForRedis(redis); // a request connection has no offline queue: the first request would be a 503
  const queues = Object.values(QUEUES).map(
    (name) => new Queue(name, { connection: redis, prefix: keys.bullPrefix }),
  );
  for (const q of queues) q.on('error', () => undefined);
  const caDir = overrides.caDir ?? path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rps-mgr-ca-')), 'ca');
  const manager = createApp({
    logger,
    keys,
    redis,
    registry: createMetricsRegistry('remote-manager-test'),
    token: TEST_TOKEN,
    queues,
    caDir,
    caBackend: localCaBackend({ caKeyBits: 2048, leafKeyBits: 2048 }),
    credentials: null,
    bundle: {
      redisUrl,
      prefix: keys.prefix,
      ivis: {
        trustedUrlBase: 'http://127.0.0.1:10329',
        sandboxUrlBase: 'http://127.0.0.1:10330',
        es: { host: '127.0.0.1', port: 10328 },
      },
    },
    drainTimeoutMs: 60_000,
    retentionMs: 60_000,
    sweepMs: 100,
    ackWaitMs: 200,
    ...overrides,
  });
  const server = http.createServer(manager.app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  manager.start();
  return {
    url,
    manager,
    redis,
    keys,
    caDir,
    queues,
    async api(method, route, body, token = TEST_TOKEN) {
      const res = await fetch(`${url}${route}`, {
        method,
        headers: {
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: the text itself
      }
      return { status: res.status, body: parsed };
    },
    async close() {
      await manager.stop();
      await closeServer(server);
      await Promise.all(queues.map((q) => q.close()));
      await closeRedis(redis);
    },
  };
}

/** One field of every element of an answer's list. */
export function pluck(list: unknown, key: string): unknown[] {
  return (list as Array<Record<string, unknown>>).map((item) => item[key]);
}
