import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import {
  closeRedis,
  closeServer,
  createLogger,
  createRedis,
  createRedisKeys,
  listen,
  loadTlsFiles,
  peerRecordToHash,
  waitForRedis,
  type KeyPairPem,
  type PeerRecord,
  type RedisKeys,
} from '@rps/common';
import { testLogger, uniquePrefix, waitFor, type TestPki } from '@rps/common/testing';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { createService, type ForwarderService } from '../../src/app';
import { DEFAULT_LIMITS, DEFAULT_UPSTREAM_TUNING, type ForwarderLimits } from '../../src/forwarder.options';
import type { UpstreamTuning } from '../../src/services/upstream.service';

/** What the TLS upstream saw of one request. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  /** Serial (hex) of the client certificate the forwarder presented. */
  clientSerial: string | undefined;
  bodyBytes: number;
}

export interface TlsUpstream {
  url: string;
  port: number;
  seen: SeenRequest[];
  server: https.Server;
  close(): Promise<void>;
}

type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, seen: SeenRequest) => void;

/** Default answer: drains the body and answers JSON with what arrived. */
export const echoHandler: UpstreamHandler = (req, res, seen) => {
  req.on('data', (chunk: Buffer) => {
    seen.bodyBytes += chunk.length;
  });
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.setHeader('connection', 'keep-alive, x-upstream-hop');
    res.setHeader('x-upstream-hop', 'must not reach the peer');
    res.end(JSON.stringify({ path: req.url, bytes: seen.bodyBytes, host: req.headers.host }));
  });
};

/**
 * An IVIS-core stand-in: HTTPS that requires a client certificate signed by
 * the test CA (requestCert + rejectUnauthorized), on 127.0.0.1.
 */
export async function startTlsUpstream(
  pki: TestPki,
  handler: UpstreamHandler = echoHandler,
  serverCert: KeyPairPem = pki.server,
): Promise<TlsUpstream> {
  const seen: SeenRequest[] = [];
  const server = https.createServer(
    {
      cert: serverCert.cert,
      key: serverCert.key,
      ca: pki.ca.cert,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      const record: SeenRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        clientSerial: peer?.serialNumber,
        bodyBytes: 0,
      };
      seen.push(record);
      handler(req, res, record);
    },
  );
  const { port } = await listen(server, { host: '127.0.0.1', port: 0 }, testLogger());
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    seen,
    server,
    close: async () => {
      server.closeAllConnections();
      await closeServer(server);
    },
  };
}

/** A forwarder built in-process, listening on free ports of 127.0.0.1. */
export interface TestForwarder {
  service: ForwarderService;
  ports: Record<string, number>;
  adminPort: number;
  redis: Redis;
  keys: RedisKeys;
  /** Parsed log lines (pino JSON). */
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export interface ForwarderOptions {
  pki: TestPki;
  redisUrl: string;
  routes: Record<string, string>;
  allow?: string[];
  tuning?: Partial<UpstreamTuning>;
  limits?: Partial<ForwarderLimits>;
  peerRefreshMs?: number;
}

export async function startForwarder(options: ForwarderOptions): Promise<TestForwarder> {
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    name: 'peer-forwarder',
    level: 'info',
    destination: { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
  });
  const keys = createRedisKeys(uniquePrefix('fwd'));
  const redis = createRedis({ url: options.redisUrl, role: 'request', name: 'fwd-test', logger });
  const subscriber = createRedis({ url: options.redisUrl, role: 'worker', name: 'fwd-test-sub', logger });
  await waitForRedis(redis);
  const service = createService({
    routes: Object.entries(options.routes).map(([name, upstream]) => ({ name, upstream })),
    allow: options.allow ?? [],
    tls: loadTlsFiles(options.pki.paths),
    tuning: { ...DEFAULT_UPSTREAM_TUNING, ...options.tuning },
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    peerRefreshMs: options.peerRefreshMs ?? 5000,
    logger,
    registry: new Registry(),
    redis: { request: redis, subscriber },
    keys,
  });
  await service.start();
  // Tests of the event path need the subscription to exist at Redis before
  // they publish; on a loaded machine it can lag start() (it retries).
  await waitFor(
    'peer event subscription',
    async () => {
      const [, count] = (await redis.pubsub('NUMSUB', keys.peerEvents())) as [string, number];
      return service.peerSync.subscribed && Number(count) >= 1;
    },
    { timeoutMs: 15_000 },
  ).catch((err: Error) => {
    throw new Error(
      `${err.message}; forwarder logs: ${JSON.stringify(logs.filter((l) => Number(l.level) >= 40))}`,
    );
  });
  const ports: Record<string, number> = {};
  for (const route of service.routes) {
    ports[route.name] = (await listen(route.server, { host: '127.0.0.1', port: 0 }, logger)).port;
  }
  const adminServer = http.createServer(service.admin);
  const adminPort = (await listen(adminServer, { host: '127.0.0.1', port: 0 }, logger)).port;
  return {
    service,
    ports,
    adminPort,
    redis,
    keys,
    logs,
    close: async () => {
      for (const route of service.routes) {
        route.dropUpgrades();
        route.closeFastPath();
        route.server.closeAllConnections();
      }
      await Promise.all(service.routes.map((r) => closeServer(r.server)));
      adminServer.closeAllConnections();
      await closeServer(adminServer);
      await service.close();
      await Promise.all([closeRedis(redis), closeRedis(subscriber)]);
    },
  };
}

/** Writes a peer record the way the agent does, and announces it on the events channel. */
export async function registerPeer(
  redis: Redis,
  keys: RedisKeys,
  peer: Pick<PeerRecord, 'id' | 'address'> & Partial<PeerRecord>,
  { announce = true }: { announce?: boolean } = {},
): Promise<void> {
  const now = Date.now();
  const record: PeerRecord = {
    capacity: 2,
    executor: 'builtin',
    version: 'test',
    state: 'active',
    adminUrl: '',
    registeredAt: now,
    heartbeatAt: now,
    ...peer,
  };
  await redis
    .multi()
    .hset(keys.peer(peer.id), peerRecordToHash(record))
    .zadd(keys.peers(), now, peer.id)
    .exec();
  if (announce) {
    await redis.publish(keys.peerEvents(), JSON.stringify({ type: 'joined', peerId: peer.id, at: now }));
  }
}

/** Announces a change of a peer already written. */
export async function announcePeer(
  redis: Redis,
  keys: RedisKeys,
  peerId: string,
  type: string,
): Promise<void> {
  await redis.publish(keys.peerEvents(), JSON.stringify({ type, peerId, at: Date.now() }));
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: () => Record<string, unknown>;
}

/** One plain-HTTP request from a chosen loopback source address (127/8 is all loopback). */
export function send(
  port: number,
  {
    method = 'GET',
    path = '/',
    headers = {},
    body,
    localAddress = '127.0.0.1',
  }: {
    method?: string;
    path?: string;
    headers?: http.OutgoingHttpHeaders | string[];
    body?: string | Buffer;
    localAddress?: string;
  } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path, headers, localAddress, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: () => JSON.parse(text) as Record<string, unknown>,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The port a server listens on. */
export function portOf(server: http.Server | https.Server): number {
  return (server.address() as AddressInfo).port;
}
