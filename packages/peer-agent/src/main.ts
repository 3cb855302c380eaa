import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  closeRedis,
  closeServer,
  CONFIG_ENV,
  createLogger,
  createRedis,
  DEFAULT_CONFIG_PATH,
  installProcessHandlers,
  listen,
  loadConfigOrExit,
  runMain,
  Shutdown,
  waitForRedis,
  type RedisRole,
  type SectionConfig,
} from '@rps/common';
import type { Logger } from 'pino';
import { DEFAULT_AGENT_OPTIONS } from './agent.options';
import { createService } from './app';

/** Exit anyway this long after SIGTERM: stopping runs, final pushes and deregistration must fit in it. */
const HARD_SHUTDOWN_MS = DEFAULT_AGENT_OPTIONS.shutdownRunsTimeoutMs + 20_000;

function packageVersion(): string {
  const file = path.join(__dirname, '..', 'package.json');
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: string }).version ?? '';
}

/**
 * `RPS_TEST_FAULT=kill-after-final-record`: the agent SIGKILLs itself right
 * after recording a run's final state, before its pushes are queued; the
 * integration tests use it to prove those pushes survive. Never set it in production.
 */
function testFaults(value: string | undefined) {
  if (value !== 'kill-after-final-record') return undefined;
  return { afterFinalRecord: () => process.kill(process.pid, 'SIGKILL') };
}

/** Jobs run as another user (executors/builtin/job-user.ts), but only file modes keep the Redis password from them. */
function warnIfConfigReadable(file: string, agent: SectionConfig<'agent'>, logger: Logger): void {
  if (agent.executor.kind !== 'builtin') return;
  const mode = fs.statSync(file, { throwIfNoEntry: false })?.mode ?? 0;
  if ((mode & 0o004) !== 0)
    logger.warn(
      { file, mode: (mode & 0o777).toString(8) },
      'the config file (redis password) is readable by every user, jobs included: chmod 600 it',
    );
}

async function main(): Promise<void> {
  const config = loadConfigOrExit(['agent']);
  const logger = createLogger({ name: 'peer-agent', level: config.log.level });
  const configFile = path.resolve(process.env[CONFIG_ENV.path] || DEFAULT_CONFIG_PATH);
  warnIfConfigReadable(configFile, config.agent, logger);
  const connect = (role: RedisRole, name: string) =>
    createRedis({ url: config.redis.url, role, name: `peer-agent:${config.agent.id}:${name}`, logger });
  const connections = {
    commands: connect('worker', 'commands'),
    blocking: connect('worker', 'control'),
    bull: connect('worker', 'bull'),
    probe: connect('request', 'probe'),
    events: connect('worker', 'events'),
  };
  const admin = config.agent.admin;
  const service = createService({
    agent: config.agent,
    redisPrefix: config.redis.prefix,
    connections,
    logger,
    version: packageVersion(),
    adminUrl: `http://${admin.host}:${admin.port}`,
    faults: testFaults(process.env.RPS_TEST_FAULT),
    options: {
      heartbeatIntervalMs: config.agent.heartbeatIntervalMs,
      maxOutputBytes: config.agent.maxOutputBytes,
      stopGraceMs: config.agent.stopGraceMs,
      finalPushWaitMs: config.agent.finalPushWaitMs,
      ...(config.agent.executor.kind === 'builtin'
        ? {
            buildTimeoutMs: config.agent.executor.buildTimeoutMs,
            pipArgs: config.agent.executor.pipArgs,
            ivisWheelDir: config.agent.executor.ivisWheelDir,
          }
        : {}),
    },
  });
  const server = http.createServer(service.adminApp);

  const shutdown = new Shutdown(logger);
  shutdown
    .add('agent', () => service.stop('shutdown'))
    .add('admin listener', () => closeServer(server))
    .add('redis', async () => {
      await Promise.all(Object.values(connections).map((redis) => closeRedis(redis)));
    });
  installProcessHandlers(shutdown, logger, { hardTimeoutMs: HARD_SHUTDOWN_MS });
  // SIGUSR2 = drain: finish the runs in hand, take no new ones, stay registered as `draining`.
  process.on('SIGUSR2', () => {
    service.drain('SIGUSR2').catch((err: unknown) => logger.error({ err }, 'drain failed'));
  });

  await listen(server, admin, logger);
  await waitForRedis(connections.commands, 30_000);
  await service.start();
}

runMain('peer-agent', main);
