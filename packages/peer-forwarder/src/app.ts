import http from 'node:http';
import type { Socket } from 'node:net';
import {
  createAdminApp,
  redisReadiness,
  type ErrorBody,
  type RedisKeys,
  type TlsMaterial,
} from '@rps/common';
import type { Express } from 'express';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { DEFAULT_LIMITS, type ForwarderLimits } from './forwarder.options';
import { FastPath } from './routes/fast-path.handler';
import {
  ExchangeLog,
  createRequestHandler,
  endWithJsonError,
  requestTimeoutBody,
  sourceOf,
  type RouteContext,
} from './routes/proxy.handler';
import { createUpgradeHandler } from './routes/upgrade.handler';
import { AccessList } from './services/access-list.service';
import { AccessLog } from './services/access-log.service';
import { ConnectionCaps } from './services/connection-caps.service';
import { createForwarderMetrics } from './services/forwarder.metrics';
import { PeerSync } from './services/peer-sync.service';
import { createUpstream, type Upstream, type UpstreamTuning } from './services/upstream.service';
import { PeerStore } from './stores/peer.store';

/** One configured route: its name (`es`, `trusted`, `sandbox`) and its HTTPS upstream. */
export interface RouteSpec {
  name: string;
  upstream: string;
}

/** What {@link createService} builds from. */
export interface ForwarderDeps {
  routes: readonly RouteSpec[];
  /** `forwarder.allow`: CIDRs admitted besides registered peers. */
  allow: readonly string[];
  tls: TlsMaterial;
  tuning: UpstreamTuning;
  /** `forwarder.limits` (DEFAULT_LIMITS when absent). */
  limits?: ForwarderLimits;
  peerRefreshMs: number;
  logger: Logger;
  registry: Registry;
  /** A request-role connection for reads and a worker-role one for the subscription. */
  redis: { request: Redis; subscriber: Redis };
  keys: RedisKeys;
  /** Access lines collected before they go to the logger's destination (0: each line at once); see AccessLog. */
  accessLogBufferChars?: number;
}

/** A built route: an HTTP server that is not listening yet. */
export interface ForwarderRoute {
  name: string;
  server: http.Server;
  upstream: Upstream;
  /** Cuts relayed upgrade connections: they are outside HTTP keep-alive handling and would hold `server.close()` open. */
  dropUpgrades(): void;
  /** Closes idle fast-path connections now and busy ones after their answer (Node's closeIdleConnections does not see them). */
  closeFastPath(): void;
}

/** The built forwarder. */
export interface ForwarderService {
  routes: ForwarderRoute[];
  admin: Express;
  accessList: AccessList;
  peerSync: PeerSync;
  /** Loads the peer registry and subscribes to its events (does not listen). */
  start(): Promise<void>;
  /** Stops peer sync and closes upstream pools (after the listeners were closed). */
  close(): Promise<void>;
  /** Hands buffered access lines to the logger's destination (main.ts: periodically and at shutdown). */
  flushAccessLog(): void;
}

/**
 * What Node's parser refused or timed out (after the fast path handed the
 * connection over), answered in the project's JSON shape and logged; the
 * socket is then released after a linger.
 */
function clientError(ctx: RouteContext, err: NodeJS.ErrnoException, socket: Socket): void {
  const inResponse = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
  if (err.code === 'ECONNRESET' || !socket.writable || inResponse) {
    socket.destroy();
    return;
  }
  const { display, key } = sourceOf(socket);
  let status = 400;
  let body: ErrorBody = {
    error: `malformed request (${err.code ?? err.message})`,
    code: 'bad_request',
    details: [],
  };
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
    body = requestTimeoutBody(
      `request not received within ${ctx.limits.headMs} ms (head) or ${ctx.limits.requestMs} ms (whole)`,
    );
  } else if (err.code === 'HPE_HEADER_OVERFLOW') {
    status = 431;
    body = { error: 'request head larger than 16 KiB', code: 'head_too_large', details: [] };
  }
  new ExchangeLog(ctx, '', '', display, ctx.accessList.checkKey(key)).finish(status);
  endWithJsonError(socket, status, body, ctx.limits.lingerMs);
}

/** Builds the forwarder (STYLE.md: builds, never listens; main.ts or a test listens). */
export function createService(deps: ForwarderDeps): ForwarderService {
  const log = deps.logger.child({ component: 'forwarder' });
  const accessList = new AccessList(deps.allow);
  const store = new PeerStore({
    redis: deps.redis.request,
    subscriber: deps.redis.subscriber,
    keys: deps.keys,
    logger: deps.logger,
  });
  const peerSync = new PeerSync(store, accessList, { refreshMs: deps.peerRefreshMs }, deps.logger);
  const metrics = createForwarderMetrics(deps.registry, () => accessList.size);
  // The access line holds only fields built here (no headers, tokens masked
  // by loggablePath), so AccessLog writes it without pino's redaction and
  // serializers (see there); the child supplies bindings, level and destination.
  const accessLog = new AccessLog(deps.logger.child({ component: 'access' }), deps.accessLogBufferChars ?? 0);
  const limits = deps.limits ?? DEFAULT_LIMITS;
  // One count per source across all routes.
  const caps = new ConnectionCaps(limits);
  const spool = {
    memoryBytes: limits.responseBufferBytes,
    fileBytes: limits.responseFileBytes,
    stallMs: limits.writeStallMs,
  };

  const routes = deps.routes.map(({ name, upstream: target }): ForwarderRoute => {
    const waits = { queueTimeoutMs: limits.queueMs, uploadIdleMs: limits.bodyIdleMs };
    const upstream = createUpstream(target, deps.tls, deps.tuning, waits, (err) => {
      log.warn(
        { route: name, err: { message: err.message, code: (err as { code?: string }).code } },
        'upstream connection failed',
      );
    });
    upstream.upgrades.on('error', (err) =>
      log.warn({ route: name, err: { message: err.message } }, 'upgrade proxy error'),
    );
    const ctx: RouteContext = {
      route: name,
      upstream,
      accessList,
      metrics,
      accessLog,
      timeouts: { connectMs: deps.tuning.connectTimeoutMs, headersMs: deps.tuning.headersTimeoutMs },
      limits,
      caps,
      spool,
    };
    // Node's server bounds what the fast path hands it: the head (checked
    // every few seconds: its default checks every 30 s), the whole request,
    // keep-alive idle. Node wants headersTimeout <= requestTimeout.
    const server = http.createServer(
      {
        headersTimeout: Math.min(limits.headMs, limits.requestMs),
        requestTimeout: limits.requestMs,
        keepAliveTimeout: limits.keepAliveMs,
        connectionsCheckingInterval: Math.min(5000, Math.max(50, Math.floor(limits.headMs / 4))),
      },
      createRequestHandler(ctx),
    );
    // The fast path takes every connection first and hands to Node's own
    // connection handling what it does not serve (fast-path.handler.ts).
    const nodeConnectionListeners = server.listeners('connection') as Array<(socket: Socket) => void>;
    server.removeAllListeners('connection');
    const fastPath = new FastPath(ctx, (socket) => {
      for (const listener of nodeConnectionListeners) listener.call(server, socket);
    });
    server.on('connection', (socket: Socket) => fastPath.accept(socket));
    const upgradeSockets = new Set<Socket>();
    const onUpgrade = createUpgradeHandler(ctx);
    server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
      upgradeSockets.add(socket);
      socket.once('close', () => upgradeSockets.delete(socket));
      onUpgrade(req, socket, head);
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => clientError(ctx, err, socket));
    const dropUpgrades = () => {
      for (const socket of upgradeSockets) socket.destroy();
    };
    return { name, server, upstream, dropUpgrades, closeFastPath: () => fastPath.close() };
  });

  const admin = createAdminApp({
    logger: deps.logger,
    registry: deps.registry,
    checks: {
      redis: redisReadiness(deps.redis.request),
      peers: async () => {
        if (!peerSync.loaded) throw new Error('peer registry not loaded yet');
      },
    },
  });

  return {
    routes,
    admin,
    accessList,
    peerSync,
    start: () => peerSync.start(),
    close: async () => {
      await peerSync.stop();
      await Promise.all(routes.map((r) => r.upstream.close()));
    },
    flushAccessLog: () => accessLog.flush(),
  };
}
