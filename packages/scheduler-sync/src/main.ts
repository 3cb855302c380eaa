import http from 'node:http';
import {
  closeRedis,
  closeServer,
  createAdminApp,
  createLogger,
  createMetricsRegistry,
  createRedis,
  createRedisKeys,
  ensureInstanceId,
  installProcessHandlers,
  listen,
  loadConfigOrExit,
  redisReadiness,
  runMain,
  safeRedisUrl,
  Shutdown,
} from '@rps/common';
import { createService } from './app';

const SERVICE = 'scheduler-sync';

async function main(): Promise<void> {
  const config = loadConfigOrExit(['scheduler']);
  const logger = createLogger({ name: SERVICE, level: config.log.level });
  const keys = createRedisKeys(config.redis.prefix);
  const url = config.redis.url;
  // Workers and ticks wait out a Redis outage; readiness must answer at once instead.
  const redis = createRedis({ url, role: 'worker', name: `${SERVICE}:worker`, logger });
  const probe = createRedis({ url, role: 'request', name: `${SERVICE}:request`, logger });
  const registry = createMetricsRegistry(SERVICE);
  const service = createService({ config: config.scheduler, keys, redis, logger, registry });
  const admin = http.createServer(
    createAdminApp({ logger, registry, checks: { redis: redisReadiness(probe) } }),
  );

  const shutdown = new Shutdown(logger)
    .add('admin listener', () => closeServer(admin))
    .add('workers and queues', () => service.stop())
    .add('redis', async () => {
      await Promise.all([closeRedis(redis), closeRedis(probe)]);
    });
  installProcessHandlers(shutdown, logger);

  const instanceId = await ensureInstanceId(redis, keys);
  logger.info({ instanceId, redis: safeRedisUrl(url), prefix: keys.prefix }, 'starting');
  await service.start();
  const address = await listen(admin, config.scheduler.admin, logger);
  logger.info({ admin: `${address.address}:${address.port}` }, 'admin listening');
}

runMain('scheduler-sync', main);
