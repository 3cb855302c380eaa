import http from 'node:http';
import https from 'node:https';
import { Queue } from 'bullmq';
import {
  closeRedis,
  closeServer,
  CONFIG_ENV,
  createLogger,
  createMetricsRegistry,
  createRedis,
  createRedisKeys,
  installProcessHandlers,
  listen,
  loadConfigOrExit,
  loadTlsFiles,
  QUEUES,
  runMain,
  safeRedisUrl,
  Shutdown,
  TlsFilesError,
  waitForRedis,
  type RpsConfig,
  type TlsMaterial,
} from '@rps/common';
import { PeerRedisUsers } from './acl/peer-redis-users';
import { createApp } from './app';
import { createDashboardRouter } from './dashboard/dashboard.router';
import { API_PREFIX, SERVICE } from './manager.constants';
import { localCaBackend } from './services/ca-backend';

type ManagerConfig = RpsConfig<'manager'>['manager'];

/** Like a config problem: one line on stderr, exit 2. */
function authOrExit(manager: ManagerConfig): void {
  if (manager.token !== null || (manager.tls?.clients.length ?? 0) > 0) return;
  process.stderr.write(
    `manager.token: required: set it in the config file or ${CONFIG_ENV.managerToken} (at least 16 characters), or name operators' client certificates in manager.tls.clients; the manager does not start without a way to authenticate\n`,
  );
  process.exit(2);
}

/** As for the gateway: one line per problem, exit 2. */
function loadTlsOrExit(tls: NonNullable<ManagerConfig['tls']>): TlsMaterial {
  try {
    return loadTlsFiles(tls);
  } catch (err) {
    if (!(err instanceof TlsFilesError)) throw err;
    process.stderr.write(err.problems.map((p) => `manager.tls: ${p}`).join('\n') + '\n');
    return process.exit(2);
  }
}

async function main(): Promise<void> {
  const config = loadConfigOrExit(['manager', 'scheduler']);
  authOrExit(config.manager);
  const { token } = config.manager;
  const tls = config.manager.tls ? loadTlsOrExit(config.manager.tls) : null;
  const logger = createLogger({ name: SERVICE, level: config.log.level });
  const keys = createRedisKeys(config.redis.prefix);
  const { url } = config.redis;

  const redis = createRedis({ url, role: 'request', name: SERVICE, logger });
  await waitForRedis(redis);
  // A Redis restart without an aclfile forgets the peer users (the keyspace survives in the
  // AOF): re-create them now and whenever the connection is ready again.
  const credentials = new PeerRedisUsers(redis, keys);
  const restoreUsers = async () => {
    const machines = await credentials.restore();
    if (machines.length > 0) logger.warn({ machines }, 'peer redis users restored');
  };
  await restoreUsers();
  redis.on('ready', () => {
    restoreUsers().catch((err: Error) =>
      logger.error(
        { err: { message: err.message } },
        'peer redis users not restored; retried at the next reconnect',
      ),
    );
  });
  const queues = Object.values(QUEUES).map((name) => {
    const queue = new Queue(name, { connection: redis, prefix: keys.bullPrefix });
    queue.on('error', (err) => logger.warn({ err: { message: err.message }, queue: name }, 'queue error'));
    return queue;
  });
  const registry = createMetricsRegistry(SERVICE);
  const manager = createApp({
    logger,
    keys,
    redis,
    registry,
    token,
    clientCertificates: config.manager.tls?.clients ?? [],
    queues,
    caDir: config.manager.caDir,
    caBackend: localCaBackend(),
    credentials,
    bundle: {
      redisUrl: config.manager.bundle.redisUrl ?? url,
      prefix: config.redis.prefix,
      ivis: config.manager.bundle.ivis,
    },
    drainTimeoutMs: config.manager.drainTimeoutMs,
    retentionMs: config.scheduler.retentionMs,
    sweepMs: config.manager.sweepMs,
    dashboard: createDashboardRouter({
      queues,
      readOnly: !config.manager.dashboard.actions,
      apiPrefix: API_PREFIX,
      token,
      logger,
    }),
  });
  // With manager.tls: HTTPS that asks for a client certificate but lets the token in without one.
  const server = tls
    ? https.createServer(
        {
          cert: tls.cert,
          key: tls.key,
          ca: tls.ca,
          requestCert: true,
          rejectUnauthorized: false,
          minVersion: 'TLSv1.2',
        },
        manager.app,
      )
    : http.createServer(manager.app);

  const shutdown = new Shutdown(logger)
    .add('listener', () => closeServer(server))
    .add('sweep', () => manager.stop())
    .add('queues', async () => {
      await Promise.all(queues.map((q) => q.close()));
    })
    .add('redis', () => closeRedis(redis));
  installProcessHandlers(shutdown, logger);

  manager.start();
  const address = await listen(server, config.manager.listen, logger);
  logger.info(
    {
      listen: `${address.address}:${address.port}`,
      redis: safeRedisUrl(url),
      prefix: keys.prefix,
      caDir: config.manager.caDir,
      dashboard: `${tls ? 'https' : 'http'}://${address.address}:${address.port}/`,
      clientCertificates: config.manager.tls?.clients.map((c) => c.name) ?? [],
    },
    'remote-manager started',
  );
}

runMain(SERVICE, main);
