import type { Queue } from 'bullmq';
import express, { type Express, type Router } from 'express';
import {
  createAdminApp,
  errorHandler,
  notFoundHandler,
  redisReadiness,
  requestContext,
  type ClientIdentity,
  type Logger,
  type RedisKeys,
} from '@rps/common';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { createDashboardRouter } from './dashboard/dashboard.router';
import { ApiRouter } from './http/api-router';
import { managerAuth } from './http/auth.middleware';
import { buildOpenApi } from './http/openapi';
import { API_PREFIX } from './manager.constants';
import { certificatesRoutes } from './routes/certificates.routes';
import { clientsRoutes } from './routes/clients.routes';
import { machinesRoutes } from './routes/machines.routes';
import { poolRoutes } from './routes/pool.routes';
import type { BundleInput } from './services/bundle.service';
import { CertificatesService, type CaBackend, type RevocationWriter } from './services/certificates.service';
import { MachinesService, type PeerCredentials } from './services/machines.service';
import { MACHINE_TYPES } from './services/type-managers/type-registry';
import type { MachineTypeManager, PoolOps } from './services/type-managers/type-manager';
import { GatewayClientsStore } from './stores/gateway-clients.store';
import { MachineStore } from './stores/machine.store';
import { PoolViewStore } from './stores/pool-view.store';
import { QueueStatsStore } from './stores/queue-stats.store';
import { CaRevocationStore } from './stores/ca-revocation.store';

/** What {@link createApp} needs; main.ts builds it, tests build their own. */
export interface ManagerDeps {
  logger: Logger;
  keys: RedisKeys;
  /** A request-role connection (fails fast: answers 503 during an outage). */
  redis: Redis;
  registry: Registry;
  /** The bearer token of /api (manager.token); null when only client certificates get in. */
  token: string | null;
  /** manager.tls.clients: client certificates that get in without the token (HTTPS listener only). */
  clientCertificates?: readonly ClientIdentity[];
  /** The BullMQ queues shown by /api/queues and the dashboard. */
  queues: Queue[];
  caDir: string;
  caBackend: CaBackend;
  /** Where revoked serials go (default: the gateway's revoked set in Redis). */
  revocations?: RevocationWriter;
  /** Per-machine Redis users; null: every bundle carries `bundle.redisUrl` as it is. */
  credentials: PeerCredentials | null;
  bundle: { redisUrl: string; prefix: string; ivis: BundleInput['ivis'] };
  drainTimeoutMs: number;
  retentionMs: number;
  sweepMs: number;
  /** Drain/undrain wait this long for the agent's acknowledgement (default 3 s). */
  ackWaitMs?: number;
  /** Machine types (default: every registered type). */
  types?: ReadonlyMap<string, MachineTypeManager<unknown>>;
  /** The dashboard (helper C's createDashboardRouter), mounted at `/`; its page is open, its data comes from /api. */
  dashboard?: Router;
  version?: string;
}

/** The built manager: nothing runs until {@link ManagerApp.start}. */
export interface ManagerApp {
  app: Express;
  machines: MachinesService;
  certificates: CertificatesService;
  /** Starts the removal sweep. */
  start(): void;
  stop(): Promise<void>;
}

function poolOps(pool: PoolViewStore): PoolOps {
  return {
    async runState(peerId, runId) {
      const view = await pool.run(runId, 0);
      return view && view.record.peerId === peerId
        ? { state: view.record.state, execution: view.record.execution }
        : null;
    },
    async sendStop(peerId, runId, execution) {
      await pool.peerAdmin.send(peerId, {
        kind: 'stop',
        id: `manager-${runId}-${execution}`,
        runId,
        execution,
      });
    },
    async sendDrain(peerId) {
      await pool.peerAdmin.send(peerId, { kind: 'drain', id: `manager-drain-${peerId}-${Date.now()}` });
    },
  };
}

/** Builds the manager's HTTP app (API, OpenAPI, dashboard, health and metrics) without listening. */
export function createApp(deps: ManagerDeps): ManagerApp {
  const { logger, keys, redis } = deps;
  const log = logger.child({ component: 'api' });
  const types = deps.types ?? MACHINE_TYPES;
  const pool = new PoolViewStore(redis, keys);
  const revokedSet = new CaRevocationStore(redis, keys);
  const certificates = new CertificatesService(deps.caDir, deps.caBackend, deps.revocations ?? revokedSet);
  const machines = new MachinesService({
    store: new MachineStore(redis, keys),
    pool,
    poolOps: poolOps(pool),
    types,
    certificates,
    credentials: deps.credentials,
    bundle: deps.bundle,
    drainTimeoutMs: deps.drainTimeoutMs,
    retentionMs: deps.retentionMs,
    logger: logger.child({ component: 'machines' }),
  });

  const api = new ApiRouter();
  machinesRoutes(api, machines, types);
  poolRoutes(api, { pool, queues: new QueueStatsStore(deps.queues), ackWaitMs: deps.ackWaitMs ?? 3000 });
  certificatesRoutes(api, certificates);
  clientsRoutes(api, new GatewayClientsStore(redis, keys));
  const openapi = buildOpenApi(api.specs, API_PREFIX, deps.version ?? '0.1.0');

  const app = express();
  app.disable('x-powered-by');
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  app.use(
    API_PREFIX,
    requestContext(log),
    managerAuth({
      token: deps.token,
      clients: deps.clientCertificates ?? [],
      isRevoked: (serial) => revokedSet.isRevoked(serial),
    }),
    express.json({ limit: '1mb' }),
    api.router,
    notFoundHandler(),
    errorHandler(log),
  );
  // Mount point of the dashboard (helper C's createDashboardRouter): page at '/', bull-board under '/queues'.
  app.use(
    '/',
    deps.dashboard ??
      createDashboardRouter({
        queues: deps.queues,
        readOnly: true,
        apiPrefix: API_PREFIX,
        token: deps.token,
        logger: log,
      }),
  );
  // Last: /healthz, /readyz, /metrics, and the JSON 404 for everything else.
  app.use(createAdminApp({ logger: log, registry: deps.registry, checks: { redis: redisReadiness(redis) } }));

  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<void> = Promise.resolve();
  let busy = false;
  return {
    app,
    machines,
    certificates,
    start() {
      timer ??= setInterval(() => {
        if (busy) return; // a slow sweep is not stacked up
        busy = true;
        sweeping = machines
          .sweep()
          .catch((err: unknown) => logger.warn({ err: String(err) }, 'machine sweep failed'))
          .finally(() => {
            busy = false;
          });
      }, deps.sweepMs);
    },
    async stop() {
      clearInterval(timer);
      await sweeping;
    },
  };
}
