import http from 'node:http';
import {
  closeRedis,
  closeServer,
  createLogger,
  createMetricsRegistry,
  createRedis,
  createRedisKeys,
  installProcessHandlers,
  listen,
  loadConfigOrExit,
  loadTlsFiles,
  runMain,
  safeRedisUrl,
  Shutdown,
  TlsFilesError,
  waitForRedis,
} from '@rps/common';
import pino from 'pino';
import { createService, type RouteSpec } from './app';

const SERVICE = 'peer-forwarder';
const LOG_BUFFER_BYTES = 4096;
const ACCESS_LOG_BUFFER_CHARS = 8192;
const LOG_FLUSH_MS = 1000;
/** `forwarder.allowLoopback`: only processes on the RPS host itself can send from these. */
const LOOPBACK_CIDRS = ['127.0.0.0/8', '::1/128'];

async function main(): Promise<void> {
  const config = loadConfigOrExit(['forwarder']);
  const { forwarder } = config;
  // The access log writes a line per request: buffer stdout writes (4 kB)
  // instead of one write syscall per line (the access log hands its lines
  // over in 8 kB chunks, see AccessLog); flushed on shutdown.
  const destination = pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES });
  const logger = createLogger({ name: SERVICE, level: config.log.level, destination });

  let tls;
  try {
    tls = loadTlsFiles(forwarder.tls);
  } catch (err) {
    if (!(err instanceof TlsFilesError)) throw err;
    for (const problem of err.problems) logger.fatal({ problem }, 'forwarder.tls unusable');
    process.exit(2);
  }

  const routes: RouteSpec[] = Object.entries(forwarder.routes).map(([name, route]) => ({
    name,
    upstream: route.upstream,
  }));
  if (routes.length === 0) logger.warn('no forwarder.routes configured: nothing to forward');

  const keys = createRedisKeys(config.redis.prefix);
  const redis = createRedis({ url: config.redis.url, role: 'request', name: `${SERVICE}:request`, logger });
  const subscriber = createRedis({
    url: config.redis.url,
    role: 'worker',
    name: `${SERVICE}:events`,
    logger,
  });
  const registry = createMetricsRegistry(SERVICE);
  const service = createService({
    routes,
    // The RPS host's own services (scheduler-sync's pushes) come from loopback.
    allow: forwarder.allowLoopback ? [...forwarder.allow, ...LOOPBACK_CIDRS] : forwarder.allow,
    tls,
    tuning: { ...config.forwarder.upstream, useSystemRoots: config.forwarder.tls.useSystemRoots },
    limits: config.forwarder.limits,
    peerRefreshMs: config.forwarder.peerRefreshMs,
    logger,
    registry,
    redis: { request: redis, subscriber },
    keys,
    accessLogBufferChars: ACCESS_LOG_BUFFER_CHARS,
  });
  // A quiet forwarder must not sit on its last lines (the access log's own
  // buffer first, then the destination's).
  const flusher = setInterval(() => {
    service.flushAccessLog();
    destination.flush();
  }, LOG_FLUSH_MS);
  flusher.unref();

  const adminServer = http.createServer(service.admin);
  const shutdown = new Shutdown(logger);
  // Stop intake first (in-flight relays finish), then the admin listener,
  // then peer sync and upstream pools, then Redis.
  shutdown
    .add('route listeners', async () => {
      await Promise.all(
        service.routes.map((r) => {
          r.dropUpgrades();
          r.closeFastPath();
          return closeServer(r.server);
        }),
      );
    })
    .add('admin listener', () => closeServer(adminServer))
    .add('peer sync and upstream pools', () => service.close())
    .add('redis', async () => {
      await Promise.all([closeRedis(redis), closeRedis(subscriber)]);
    })
    .add('log flush', async () => {
      clearInterval(flusher);
      service.flushAccessLog();
      destination.flushSync();
    });
  installProcessHandlers(shutdown, logger, { hardTimeoutMs: 15_000 });

  await waitForRedis(redis, 10_000).catch((err: Error) => {
    // Start anyway: forwarder.allow ranges work without Redis, and the peer
    // list loads on the next refresh.
    logger.warn({ redis: safeRedisUrl(config.redis.url), err: { message: err.message } }, 'redis not ready');
  });
  await service.start();

  for (const route of service.routes) {
    const spec = forwarder.routes[route.name as keyof typeof forwarder.routes];
    if (!spec) continue;
    const address = await listen(route.server, spec.listen, logger);
    logger.info(
      { route: route.name, host: address.address, port: address.port, upstream: spec.upstream },
      'route listening',
    );
  }
  const admin = await listen(adminServer, forwarder.admin, logger);
  logger.info({ host: admin.address, port: admin.port }, 'admin listening');
  destination.flush();
}

runMain('peer-forwarder', main);
