import http from 'node:http';
import {
  closeRedis,
  closeServer,
  createAdminApp,
  createLogger,
  createMetricsRegistry,
  createRedis,
  createRedisKeys,
  installProcessHandlers,
  listen,
  loadConfigOrExit,
  redisReadiness,
  runMain,
  safeRedisUrl,
  Shutdown,
} from '@rps/common';
import { createService } from './app';

const SERVICE = 'ip-watchdog';

async function main(): Promise<void> {
  const config = loadConfigOrExit(['watchdog']);
  const logger = createLogger({ name: SERVICE, level: config.log.level });
  const keys = createRedisKeys(config.redis.prefix);
  const url = config.redis.url;
  // The loops wait out a Redis outage; readiness must answer at once instead.
  const redis = createRedis({ url, role: 'worker', name: `${SERVICE}:worker`, logger });
  const subscriber = createRedis({ url, role: 'worker', name: `${SERVICE}:subscriber`, logger });
  const probe = createRedis({ url, role: 'request', name: `${SERVICE}:request`, logger });
  const registry = createMetricsRegistry(SERVICE);
  const service = createService({ config: config.watchdog, keys, redis, subscriber, logger, registry });
  const admin = http.createServer(
    createAdminApp({ logger, registry, checks: { redis: redisReadiness(probe) } }),
  );

  const shutdown = new Shutdown(logger)
    .add('admin listener', () => closeServer(admin))
    .add('checks and notifications', () => service.stop())
    .add('redis', async () => {
      await Promise.all([closeRedis(redis), closeRedis(subscriber), closeRedis(probe)]);
    });
  installProcessHandlers(shutdown, logger);

  logger.info({ redis: safeRedisUrl(url), prefix: keys.prefix }, 'starting');
  await service.start();
  const address = await listen(admin, config.watchdog.admin, logger);
  logger.info({ admin: `${address.address}:${address.port}` }, 'admin listening');
}

runMain('ip-watchdog', main);
