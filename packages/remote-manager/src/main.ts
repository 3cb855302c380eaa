import http from 'node:http';
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
  QUEUES,
  runMain,
  safeRedisUrl,
  Shutdown,
  waitForRedis,
} from '@rps/common';
import { createApp } from './app';
import { createDashboardRouter } from './dashboard/dashboard.router';
import { API_PREFIX, SERVICE } from './manager.constants';
import { localCaBackend } from './services/ca-backend';

/** Like a config problem: one line on stderr, exit 2. */
function tokenOrExit(token: string | null): string {
  if (token !== null) return token;
  process.stderr.write(
    `manager.token: required: set it in the config file or ${CONFIG_ENV.managerToken} (at least 16 characters); the manager does not start without a way to authenticate\n`,
  );
  return process.exit(2);
}

async function main(): Promise<void> {
  const config = loadConfigOrExit(['manager', 'scheduler']);
  const token = tokenOrExit(config.manager.token);
  const logger = createLogger({ name: SERVICE, level: config.log.level });
  const keys = createRedisKeys(config.redis.prefix);
  const { url } = config.redis;

  const redis = createRedis({ url, role: 'request', name: SERVICE, logger });
  await waitForRedis(redis);
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
    queues,
    caDir: config.manager.caDir,
    caBackend: localCaBackend(),
    credentials: null,
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
    }),
  });
  const server = http.createServer(manager.app);

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
      dashboard: `http://${address.address}:${address.port}/`,
    },
    'remote-manager started',
  );
}

runMain(SERVICE, main);
