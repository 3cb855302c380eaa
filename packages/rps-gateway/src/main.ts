import http from 'node:http';
import { Queue } from 'bullmq';
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
  QUEUES,
  runMain,
  safeRedisUrl,
  Shutdown,
  TlsFilesError,
  waitForRedis,
  type Logger,
  type TlsMaterial,
} from '@rps/common';
import { createApp, createHttpsServer } from './app';
import { GATEWAY_NODE_FLAGS, missingNodeFlags } from './gateway.constants';
import { bytesLaneKind } from './services/bytes-lane';

/** Like a config problem: one line per problem on stderr, exit 2, no stack trace. */
function loadTlsOrExit(paths: { cert: string; key: string; ca: string }): TlsMaterial {
  try {
    return loadTlsFiles(paths);
  } catch (err) {
    if (!(err instanceof TlsFilesError)) throw err;
    process.stderr.write(err.problems.map((p) => `gateway.tls: ${p}`).join('\n') + '\n');
    return process.exit(2);
  }
}

function createQueue(
  name: string,
  connection: ReturnType<typeof createRedis>,
  prefix: string,
  logger: Logger,
) {
  const queue = new Queue(name, { connection, prefix });
  queue.on('error', (err) => logger.warn({ err: { message: err.message }, queue: name }, 'queue error'));
  return queue;
}

async function main(): Promise<void> {
  const config = loadConfigOrExit(['gateway']);
  const logger = createLogger({ name: 'rps-gateway', level: config.log.level });
  const tls = loadTlsOrExit(config.gateway.tls);
  const keys = createRedisKeys(config.redis.prefix);
  const { url } = config.redis;

  const redis = createRedis({ url, role: 'request', name: 'rps-gateway', logger });
  // The queues on a request-role connection of their own: BullMQ defines its
  // 64 scripts on the connection it is given, and ioredis copies every one
  // onto each MULTI made on it (about 65 µs per submit batch on `redis`).
  const queueRedis = createRedis({ url, role: 'request', name: 'rps-gateway-queues', logger });
  await Promise.all([waitForRedis(redis), waitForRedis(queueRedis)]);
  const queueLog = logger.child({ component: 'queues' });
  const runsQueue = createQueue(QUEUES.runs, queueRedis, keys.bullPrefix, queueLog);
  const pushesQueue = createQueue(QUEUES.pushes, queueRedis, keys.bullPrefix, queueLog);
  const registry = createMetricsRegistry('rps-gateway');

  const gateway = createApp({
    logger,
    keys,
    redis,
    createBlockingRedis: () => createRedis({ url, role: 'worker', name: 'rps-gateway-ack', logger }),
    createUploadRedis: () => createRedis({ url, role: 'request', name: 'rps-gateway-upload', logger }),
    runsQueue,
    pushesQueue,
    registry,
    options: {
      bodyLimit: config.gateway.bodyLimit,
      stopAckTimeoutMs: config.gateway.stopAckTimeoutMs,
      revocationRecheckMs: config.gateway.revocationRecheckMs,
      pushAttempts: config.gateway.pushAttempts,
      pushBackoffMs: config.gateway.pushBackoffMs,
      clients: config.gateway.clients,
      allowAnyClientOfCa: config.gateway.allowAnyClientOfCa,
    },
  });
  const server = createHttpsServer(gateway.app, tls);
  const adminServer = http.createServer(gateway.adminApp);

  const shutdown = new Shutdown(logger)
    .add('public listener', () => closeServer(server))
    .add('admin listener', () => closeServer(adminServer))
    .add('stop waits', () => gateway.close())
    .add('queues', async () => {
      await Promise.all([runsQueue.close(), pushesQueue.close()]);
    })
    .add('redis', async () => {
      await Promise.all([closeRedis(redis), closeRedis(queueRedis)]);
    });
  installProcessHandlers(shutdown, logger);

  await gateway.start();
  const admin = await listen(adminServer, config.gateway.admin, logger);
  const publicAddress = await listen(server, config.gateway.listen, logger);
  const lane = bytesLaneKind();
  const missingFlags = missingNodeFlags(process.execArgv);
  logger.info(
    {
      listen: `${publicAddress.address}:${publicAddress.port}`,
      admin: `${admin.address}:${admin.port}`,
      redis: safeRedisUrl(url),
      prefix: config.redis.prefix,
      serverCertificate: tls.certificate.subject,
      clients: config.gateway.clients.map((c) => c.name),
      allowAnyClientOfCa: config.gateway.allowAnyClientOfCa,
      archiveBytesLane: lane.kind,
      nodeFlags: process.execArgv,
    },
    'rps-gateway started',
  );
  if (lane.kind === 'javascript') {
    logger.warn(
      { reason: lane.reason },
      'archive bytes checked without WebAssembly SIMD: large bodies cost more CPU',
    );
  }
  if (missingFlags.length > 0) {
    logger.warn(
      { missing: missingFlags, expected: GATEWAY_NODE_FLAGS },
      "node started without the gateway's heap flags: more CPU per run goes to garbage collection (docs/gateway.md, Heap)",
    );
  }
  if (config.gateway.allowAnyClientOfCa) {
    logger.warn(
      'gateway.allowAnyClientOfCa is set: every certificate of gateway.tls.ca gets in, executors too',
    );
  }
}

runMain('rps-gateway', main);
