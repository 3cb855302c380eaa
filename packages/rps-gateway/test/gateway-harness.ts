import http from 'node:http';
import https from 'node:https';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import {
  closeRedis,
  closeServer,
  controlCommandSchema,
  createLogger,
  createRedis,
  createRedisKeys,
  listen,
  QUEUES,
  waitForRedis,
  type ControlAck,
  type ControlCommand,
  type Logger,
  type RedisKeys,
} from '@rps/common';
import { testLogger, uniquePrefix, type TestPki } from '@rps/common/testing';
import { createApp, createHttpsServer, type GatewayOptions } from '../src/app';
import { CONTROL_COMMAND_FIELD } from '../src/stores/control.store';

/** A gateway on port 0 with everything a test needs to look inside. */
export interface TestGateway {
  port: number;
  adminPort: number;
  keys: RedisKeys;
  /** A worker-role connection for the test's own reads and writes. */
  redis: Redis;
  runsQueue: Queue;
  pushesQueue: Queue;
  close(): Promise<void>;
}

/** Starts a gateway against `redisUrl` under a fresh key prefix (or the given one). */
export async function startGateway(
  redisUrl: string,
  pki: TestPki,
  options: Partial<GatewayOptions> & { prefix?: string; logger?: Logger; inspectUrl?: string } = {},
): Promise<TestGateway> {
  const logger = options.logger ?? testLogger();
  const keys = createRedisKeys(options.prefix ?? uniquePrefix('gw'));
  const requestRedis = createRedis({ url: redisUrl, role: 'request', name: 'gw-test', logger });
  // The test's own view goes straight to Redis when the gateway's goes through a fault proxy.
  const redis = createRedis({
    url: options.inspectUrl ?? redisUrl,
    role: 'worker',
    name: 'gw-test-inspect',
    logger,
  });
  // As main.ts does: the queues on a request-role connection of their own.
  const queueRedis = createRedis({ url: redisUrl, role: 'request', name: 'gw-test-queues', logger });
  await Promise.all([waitForRedis(requestRedis), waitForRedis(redis), waitForRedis(queueRedis)]);
  const runsQueue = new Queue(QUEUES.runs, { connection: queueRedis, prefix: keys.bullPrefix });
  const pushesQueue = new Queue(QUEUES.pushes, { connection: queueRedis, prefix: keys.bullPrefix });
  // As main.ts does: a queue without an error listener throws on every connection error.
  for (const queue of [runsQueue, pushesQueue]) queue.on('error', () => undefined);
  const gateway = createApp({
    logger,
    keys,
    redis: requestRedis,
    createBlockingRedis: () => createRedis({ url: redisUrl, role: 'worker', name: 'gw-test-ack', logger }),
    runsQueue,
    pushesQueue,
    registry: new Registry(),
    options: {
      bodyLimit: 64 * 1024 ** 2,
      stopAckTimeoutMs: 1000,
      clients: [pki.clientIdentity],
      ...gatewayOptions(options),
    },
  });
  await gateway.start();
  const server = createHttpsServer(gateway.app, {
    cert: pki.server.cert,
    key: pki.server.key,
    ca: pki.ca.cert,
  });
  const adminServer = http.createServer(gateway.adminApp);
  const address = await listen(server, { host: '127.0.0.1', port: 0 }, logger);
  const admin = await listen(adminServer, { host: '127.0.0.1', port: 0 }, logger);
  return {
    port: address.port,
    adminPort: admin.port,
    keys,
    redis,
    runsQueue,
    pushesQueue,
    close: async () => {
      server.closeAllConnections();
      await closeServer(server);
      await closeServer(adminServer);
      await gateway.close();
      await Promise.all([runsQueue.close(), pushesQueue.close()]);
      await closeRedis(requestRedis);
      await closeRedis(queueRedis);
      await closeRedis(redis);
    },
  };
}

/** A logger as main.ts makes it (same redaction), keeping every line parsed. */
export function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    name: 'rps-gateway',
    level: 'debug',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { logger, lines };
}

function gatewayOptions(
  options: Partial<GatewayOptions> & { prefix?: string; logger?: Logger; inspectUrl?: string },
) {
  const { prefix: _prefix, logger: _logger, inspectUrl: _inspect, ...rest } = options;
  return rest;
}

/** A response, body kept as bytes. */
export interface TestResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json(): Record<string, unknown>;
  ms: number;
}

/** One HTTPS request on a fresh connection (so every request has its own handshake). */
export interface CallOptions {
  method?: string;
  body?: Buffer | string;
  headers?: Record<string, string>;
  /** Client certificate; default the valid one. `null` sends none. */
  client?: { cert: string; key: string } | null;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  agent?: https.Agent;
}

export function call(
  pki: TestPki,
  port: number,
  path: string,
  options: CallOptions = {},
): Promise<TestResponse> {
  const client = options.client === undefined ? pki.client : options.client;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        ca: pki.ca.cert,
        ...(client ?? {}),
        ...(options.minVersion ? { minVersion: options.minVersion } : {}),
        ...(options.maxVersion ? { maxVersion: options.maxVersion } : {}),
        agent: options.agent ?? false,
        headers: {
          ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          // A fresh connection per call: close it now rather than when both ends agree to.
          if (!options.agent) res.socket.destroy();
          const data = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: data,
            json: () => JSON.parse(data.toString('utf8')) as Record<string, unknown>,
            ms: Date.now() - started,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The TV1 body, with an unknown field and an unusual key order a re-serialiser would not keep. */
export function runBody(runId: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    params: { sigSet: 'temperature' },
    entities: { signalSets: {}, signals: {} },
    owned: { signalSets: {} },
    type: 'python',
    codeArchive: { type: 'Buffer', data: [46, 47, 0, 0, 0, 0, 0, 0] },
    accessToken: 'tok',
    state: null,
    jobId: 5,
    runId,
    taskId: 7,
    ...overrides,
  };
}

/** What a simulated agent answers to a stop: an ack, or null to stay silent. */
export type AgentReply = (command: ControlCommand) => Omit<ControlAck, 'id'> | null;

/**
 * A stand-in for a peer-agent's control loop: reads the peer's stream and
 * LPUSHes acknowledgements as the contract says. Returns the commands it saw.
 */
export function simulateAgent(redis: Redis, keys: RedisKeys, peerId: string, reply: AgentReply) {
  const seen: ControlCommand[] = [];
  let running = true;
  const reader = redis.duplicate();
  const loop = (async () => {
    let last = '0';
    while (running) {
      const res = await reader.xread('BLOCK', 100, 'STREAMS', keys.peerControl(peerId), last);
      for (const [, entries] of res ?? []) {
        for (const [entryId, fields] of entries) {
          last = entryId;
          const json = fields[fields.indexOf(CONTROL_COMMAND_FIELD) + 1] ?? '';
          const command = controlCommandSchema.parse(JSON.parse(json));
          seen.push(command);
          const ack = reply(command);
          if (ack) {
            const key = keys.controlAck(command.id);
            await redis
              .multi()
              .lpush(key, JSON.stringify({ id: command.id, ...ack }))
              .expire(key, 60)
              .exec();
          }
        }
      }
    }
  })();
  return {
    seen,
    stop: async () => {
      running = false;
      await loop;
      reader.disconnect();
    },
  };
}

/** Registers a peer the way an agent would (hash + heartbeat zset). */
export async function registerPeer(
  redis: Redis,
  keys: RedisKeys,
  peerId: string,
  state: 'active' | 'draining' | 'stopped' | 'lost' | 'removed',
  heartbeatAt = Date.now(),
): Promise<void> {
  await redis
    .multi()
    .hset(keys.peer(peerId), {
      id: peerId,
      address: '127.0.0.1',
      capacity: '2',
      executor: 'builtin',
      version: 'test',
      state,
      adminUrl: '',
      registeredAt: String(heartbeatAt),
      heartbeatAt: String(heartbeatAt),
    })
    .zadd(keys.peers(), heartbeatAt, peerId)
    .exec();
}

/** Reads every command on a peer's control stream. */
export async function controlCommands(
  redis: Redis,
  keys: RedisKeys,
  peerId: string,
): Promise<ControlCommand[]> {
  const entries = await redis.xrange(keys.peerControl(peerId), '-', '+');
  return entries.map(([, fields]) =>
    controlCommandSchema.parse(JSON.parse(fields[fields.indexOf(CONTROL_COMMAND_FIELD) + 1] ?? '')),
  );
}
