import http from 'node:http';
import {
  ensureInstanceId,
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
    createAdminApp({ logger, registry, checks: { redis: async () => void (await probe.ping()) } }),
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

main().catch((err: unknown) => {
  // The logger may not exist yet (the failure can be in building it), so write plain JSON.
  process.stderr.write(`${JSON.stringify({ level: 'fatal', msg: 'start failed', err: String(err) })}\n`);
  process.exit(1);
});
