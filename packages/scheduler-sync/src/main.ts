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
import { resolvePushUrl } from './services/push-url';

const SERVICE = 'scheduler-sync';

async function main(): Promise<void> {
  // The forwarder section only for its trusted route: the RPS host delivers its own pushes.
  const config = loadConfigOrExit(['scheduler', 'forwarder']);
  const logger = createLogger({ name: SERVICE, level: config.log.level });
  const pushUrl = resolvePushUrl(config.scheduler.trustedUrlBase, config.forwarder.routes.trusted);
  if (pushUrl.url)
    logger.info({ url: pushUrl.url, from: pushUrl.source }, 'pushes delivered through the forwarder');
  else
    logger.warn('no scheduler.trustedUrlBase and no forwarder.routes.trusted: pushes are left to the agents');
  const keys = createRedisKeys(config.redis.prefix);
  const url = config.redis.url;
  // Workers and ticks wait out a Redis outage; readiness must answer at once instead.
  const redis = createRedis({ url, role: 'worker', name: `${SERVICE}:worker`, logger });
  const probe = createRedis({ url, role: 'request', name: `${SERVICE}:request`, logger });
  const registry = createMetricsRegistry(SERVICE);
  const service = createService({
    config: { ...config.scheduler, trustedUrlBase: pushUrl.url },
    keys,
    redis,
    logger,
    registry,
  });
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
