import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import https from 'node:https';
import express, { type Express } from 'express';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import {
  closeRedis,
  createAdminApp,
  errorHandler,
  notFoundHandler,
  redisReadiness,
  requestContext,
  RunStore,
  type ClientIdentity,
  type Logger,
  type RedisKeys,
} from '@rps/common';
import { GATEWAY_DEFAULTS } from './gateway.constants';
import { clientCertCheck, clientCertGuard } from './http/client-cert.middleware';
import { runSubmitLane } from './http/run-submit.lane';
import { createGatewayMetrics, metricsMiddleware } from './metrics/gateway.metrics';
import { RUN_SUBMIT_PATH, runsRoutes, runSubmitHandlers } from './routes/runs.routes';
import { tasksRoutes } from './routes/tasks.routes';
import { ClientAllowList } from './services/client-allow-list.service';
import { RunsService } from './services/runs.service';
import { StopService } from './services/stop.service';
import { TasksService } from './services/tasks.service';
import { BlockingPool } from './stores/blocking-pool';
import { ClientAllowListStore } from './stores/client-allow-list.store';
import { ConnectionStore } from './stores/connection.store';
import { ControlStore } from './stores/control.store';
import { PeerStore } from './stores/peer.store';
import { PushQueueStore } from './stores/push-queue.store';
import { RevocationStore } from './stores/revocation.store';
import { RunAckStore } from './stores/run-ack.store';
import { RunEventsStore } from './stores/run-events.store';
import { RunQueueStore } from './stores/run-queue.store';
import { RunSubmitStore } from './stores/run-submit.store';
import { RunUploadStore } from './stores/run-upload.store';

/** Tunables with defaults from {@link GATEWAY_DEFAULTS}. */
export interface GatewayOptions {
  bodyLimit: number;
  stopAckTimeoutMs?: number;
  revocationRecheckMs?: number;
  ackPoolIdle?: number;
  pushAttempts?: number;
  pushBackoffMs?: number;
  /** `gateway.clients`: who may in besides the runtime list in Redis. */
  clients?: readonly ClientIdentity[];
  /** `gateway.allowAnyClientOfCa`. */
  allowAnyClientOfCa?: boolean;
  clientsRefreshMs?: number;
  submitBudgetMs?: number;
  /** Run bodies declaring more bytes are staged in Redis as they upload (see RunUploadStore). */
  stageBodiesAboveBytes?: number;
}

/** Everything the gateway is built from; main.ts and tests create these. */
export interface GatewayDeps {
  logger: Logger;
  keys: RedisKeys;
  /** Request-role connection (fails fast): run records, streams, revocation list. */
  redis: Redis;
  /** Makes a worker-role connection for blocking reads (stop acknowledgements). */
  createBlockingRedis: () => Redis;
  /**
   * Makes the request-role connection that large run bodies are staged on
   * while they upload (default: a duplicate of `redis`); opened by `start`,
   * closed by `close`.
   */
  createUploadRedis?: () => Redis;
  /**
   * The BullMQ queues, best on a request-role connection other than `redis`:
   * BullMQ defines its scripts on its connection, and ioredis copies all of
   * them onto every MULTI made there (the run submits' MULTIs are on `redis`).
   */
  runsQueue: Queue;
  pushesQueue: Queue;
  registry: Registry;
  options: GatewayOptions;
}

/** The built gateway: apps to serve and what must be closed on shutdown. */
export interface Gateway {
  /**
   * The public request handler (serve it with {@link createHttpsServer}):
   * IVIS-core's run POST on its own lane (run-submit.lane.ts), everything
   * else through the Express app.
   */
  app: RequestListener;
  /** `/healthz`, `/readyz`, `/metrics`. */
  adminApp: Express;
  /**
   * Checks that BullMQ's run job add is still what the submit script writes
   * (RunSubmitStore.checkBullShape), then reads the runtime allow-list once
   * and keeps it fresh; call before listening.
   */
  start(): Promise<void>;
  /** Stops the allow-list refresh and closes the blocking connections (the caller owns `redis` and the queues). */
  close(): Promise<void>;
}

/** Builds the gateway from its dependencies; never listens or connects. */
export function createApp(deps: GatewayDeps): Gateway {
  const { logger, keys, redis, options } = deps;
  const opts = { ...GATEWAY_DEFAULTS, ...options };
  const blocking = new BlockingPool(deps.createBlockingRedis, opts.ackPoolIdle);
  const runQueue = new RunQueueStore(deps.runsQueue);
  const control = new ControlStore(redis, keys, blocking);
  const events = new RunEventsStore(redis, keys);
  const runStore = new RunStore(redis, keys);
  const pushQueue = new PushQueueStore(deps.pushesQueue, {
    attempts: opts.pushAttempts,
    backoffMs: opts.pushBackoffMs,
  });
  const revocations = new RevocationStore(redis, keys);
  const clientStore = new ClientAllowListStore(redis, keys);
  const allowList = new ClientAllowList({
    configured: opts.clients ?? [],
    allowAnyClientOfCa: opts.allowAnyClientOfCa ?? false,
    load: () => clientStore.read(),
    refreshMs: opts.clientsRefreshMs,
    logger: logger.child({ component: 'clients' }),
  });
  const uploads = new RunUploadStore(
    deps.createUploadRedis ??
      (() => redis.duplicate({ connectionName: 'rps-gateway-upload' }).on('error', () => undefined)),
    keys,
  );
  const metrics = createGatewayMetrics(deps.registry, () => runQueue.depth(), logger);

  const submits = new RunSubmitStore(redis, keys, deps.runsQueue, (n) =>
    metrics.batchSize.observe({ step: 'submit' }, n),
  );
  const runs = new RunsService({
    runs: runStore,
    runQueue,
    submits,
    acks: new RunAckStore(redis, keys, (n) => metrics.batchSize.observe({ step: 'acknowledge' }, n)),
    control,
    connection: new ConnectionStore(redis),
    logger: logger.child({ component: 'runs' }),
    submitBudgetMs: opts.submitBudgetMs,
  });
  const stop = new StopService({
    runs: runStore,
    runQueue,
    pushQueue,
    control,
    events,
    logger: logger.child({ component: 'stop' }),
    ackTimeoutMs: opts.stopAckTimeoutMs,
  });
  const tasks = new TasksService({
    peers: new PeerStore(redis, keys, logger),
    control,
    logger: logger.child({ component: 'tasks' }),
  });

  // One check for the run POST's lane and the guard: they share each connection's revocation verdict.
  const checkClient = clientCertCheck({
    isRevoked: (serial) => revocations.isRevoked(serial),
    identify: (identity) => allowList.identify(identity),
    recheckMs: opts.revocationRecheckMs,
  });
  const staging = { uploads, aboveBytes: opts.stageBodiesAboveBytes };
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Every request: an id and a logger, metrics, then the client certificate.
  const front = [requestContext(logger), metricsMiddleware(metrics), clientCertGuard(checkClient)];
  // IVIS-core's run request in the shapes the lane leaves to Express (a compressed body, say), as one route.
  app.post(
    RUN_SUBMIT_PATH,
    ...front,
    ...runSubmitHandlers({ runs, metrics, bodyLimit: opts.bodyLimit, staging }),
  );
  app.use(...front);
  app.use(runsRoutes({ runs, stop }));
  app.use(tasksRoutes({ tasks }));
  app.use(notFoundHandler());
  app.use(errorHandler(logger));

  const adminApp = createAdminApp({
    logger: logger.child({ component: 'admin' }),
    registry: deps.registry,
    checks: { redis: redisReadiness(redis) },
  });

  const lane = runSubmitLane({
    runs,
    metrics,
    logger,
    checkClient,
    bodyLimit: opts.bodyLimit,
    staging,
  });
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (!lane(req, res)) app(req, res);
  };

  return {
    app: handler,
    adminApp,
    start: async () => {
      uploads.connection();
      await submits.checkBullShape();
      await allowList.start();
    },
    close: async () => {
      allowList.stop();
      await blocking.close();
      await uploads.close(closeRedis);
    },
  };
}

/** TLS material for the public listener. */
export interface GatewayTls {
  cert: Buffer | string;
  key: Buffer | string;
  ca: Buffer | string;
}

/**
 * The public mTLS server: only clients with a certificate from `ca` complete
 * the handshake (the original RPS never enforced this). TLS 1.2 stays
 * allowed because IVIS-core's front speaks it.
 */
export function createHttpsServer(app: RequestListener, tls: GatewayTls): https.Server {
  return https.createServer(
    {
      cert: tls.cert,
      key: tls.key,
      ca: tls.ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    },
    app,
  );
}
