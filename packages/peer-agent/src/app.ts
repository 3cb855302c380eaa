import type { Express } from 'express';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  createAdminApp,
  createMetricsRegistry,
  createPushGivenUpCounter,
  createRedisKeys,
  OutboxDrainer,
  PushOutbox,
  redisReadiness,
  watchGivenUpPushes,
  type SectionConfig,
} from '@rps/common';
import { AgentRuntime } from './agent-runtime';
import { DEFAULT_AGENT_OPTIONS, type AgentOptions } from './agent.options';
import { createExecutor } from './executors/executor.factory';
import type { Executor } from './executors/executor';
import { createPushProcessor } from './jobs/push.processor';
import { createRunProcessor } from './jobs/run.processor';
import {
  createPushQueue,
  createPushWorker,
  createRunJobRequeuer,
  createRunQueue,
  createRunWorker,
} from './jobs/workers';
import { ActiveRuns } from './services/active-runs';
import { AgentMetrics } from './services/agent.metrics';
import { ControlService } from './services/control.service';
import { FinalPushes, type AgentFaults } from './services/final-pushes.service';
import { IvisPushClient } from './services/ivis-push.client';
import { OrphanRuns } from './services/orphan-runs.service';
import { Registration } from './services/registration.service';
import { RunLifecycle } from './services/run-lifecycle.service';
import { ReporterFactory } from './services/run-reporter.factory';
import { RunTimings } from './services/run-timings';
import { ControlStore } from './stores/control.store';
import { PeerStore } from './stores/peer.store';
import { RunLedger } from './stores/run-ledger.store';

/** Redis connections by role (STYLE.md rule 6); main.ts opens them, tests too. */
export interface AgentConnections {
  /** Worker role: record changes, pushes of state, heartbeats (wait out Redis outages). */
  commands: Redis;
  /** Worker role, only for the blocking control-stream read. */
  blocking: Redis;
  /** Worker role, for the BullMQ workers and queue. */
  bull: Redis;
  /** Request role, for `/readyz` (fails fast). Defaults to `commands`. */
  probe?: Redis;
  /**
   * Worker role, in subscribe mode: a claim that found its run's submit not
   * acknowledged yet is woken by the acknowledgement (RunLedger.acks).
   * Without it such a claim polls every 10 ms.
   */
  events?: Redis;
}

export interface AgentServiceDeps {
  agent: SectionConfig<'agent'>;
  redisPrefix: string;
  connections: AgentConnections;
  logger: Logger;
  version: string;
  /** Where the admin listener answers, as recorded in the peer record. */
  adminUrl: string;
  options?: Partial<AgentOptions>;
  registry?: Registry;
  /** Test fault points (main.ts: from `RPS_TEST_FAULT`). */
  faults?: AgentFaults;
}

/** The agent, built but not started. */
export interface AgentService {
  readonly peerId: string;
  readonly adminApp: Express;
  readonly registry: Registry;
  readonly active: ActiveRuns;
  readonly control: ControlService;
  readonly executor: Executor;
  /** Registers, recovers an earlier life's runs, then starts taking runs and commands. */
  start(): Promise<void>;
  /** Takes no new runs, finishes current ones, marks the peer `draining`, kept across restarts (SIGUSR2, control command). */
  drain(reason: string): Promise<void>;
  /** Takes runs again after a drain (`undrain` control command); false while stopping or once removed. */
  undrain(reason: string): Promise<boolean>;
  /**
   * Ordered stop: no new runs; builds abort and go back to the queue;
   * running jobs are stopped and reported failed ("agent shutting down");
   * workers, control reader; the peer is marked `stopped` (still in the pool). Connections stay open (their owner closes them).
   */
  stop(reason: string): Promise<void>;
}

/** Builds the peer agent from its dependencies, without starting anything. */
export function createService(deps: AgentServiceDeps): AgentService {
  const options: AgentOptions = { ...DEFAULT_AGENT_OPTIONS, ...deps.options };
  const { agent, connections } = deps;
  const peerId = agent.id;
  const logger = deps.logger.child({ peerId });
  const keys = createRedisKeys(deps.redisPrefix);
  const registry = deps.registry ?? createMetricsRegistry('peer-agent');
  const metrics = new AgentMetrics(registry, agent.capacity);
  const pushClient = new IvisPushClient({
    trustedUrlBase: agent.ivis.trustedUrlBase,
    attempts: options.pushAttempts,
    backoffMs: options.pushBackoffMs,
    maxBackoffMs: options.pushMaxBackoffMs,
    timeoutMs: options.httpTimeoutMs,
    logger: logger.child({ component: 'push' }),
    onFailure: (kind) => metrics.pushFailed(kind),
  });
  const executor = createExecutor(agent, options, pushClient, logger);
  const ledger = new RunLedger(connections.commands, keys, logger, connections.events);
  const active = new ActiveRuns((count) => metrics.setActive(count));
  const reporters = new ReporterFactory(pushClient, options, logger);
  const bullDeps = { connection: connections.bull, keys, peerId, logger };
  const queue = createRunQueue(bullDeps);
  const pushQueue = createPushQueue(bullDeps);
  const outbox = new PushOutbox(connections.commands, keys);
  const drainer = new OutboxDrainer({
    outbox,
    queue: pushQueue,
    retry: options.finalPushRetry,
    logger: logger.child({ component: 'outbox' }),
  });
  const finals = new FinalPushes({
    ledger,
    drainer,
    outbox,
    waitMs: options.finalPushWaitMs,
    logger,
    faults: deps.faults,
  });
  const givenUp = createPushGivenUpCounter(registry);
  const orphans = new OrphanRuns({
    ledger,
    executor,
    reporters,
    finals,
    requeueJob: createRunJobRequeuer(queue),
    metrics,
    peerId,
    logger: logger.child({ component: 'orphans' }),
  });
  const lifecycle = new RunLifecycle({
    ledger,
    executor,
    active,
    reporters,
    orphans,
    finals,
    metrics,
    options,
    peerId,
    logger,
  });
  // The runtime needs the parts built here, and some parts call it back: a holder breaks the cycle.
  const late: { runtime?: AgentRuntime } = {};
  const runProcessor = createRunProcessor(
    lifecycle,
    { accepting: () => late.runtime?.isAccepting() ?? false },
    logger,
    new RunTimings(registry),
  );
  const runWorker = createRunWorker(runProcessor.process, agent.capacity, options, bullDeps);
  runWorker.on('completed', (job) => runProcessor.completed(job.id));
  const onGivenUp = (kind: string) => givenUp.inc({ kind });
  const pushWorker = createPushWorker(
    createPushProcessor(pushClient, logger, onGivenUp),
    options.pushConcurrency,
    options,
    bullDeps,
  );
  watchGivenUpPushes(pushWorker, { logger: logger.child({ component: 'push-worker' }), onGivenUp });
  const registration = new Registration({
    store: new PeerStore(connections.commands, keys),
    identity: {
      id: peerId,
      address: agent.address,
      capacity: agent.capacity,
      executor: agent.executor.kind,
      version: deps.version,
      adminUrl: deps.adminUrl,
    },
    heartbeatIntervalMs: options.heartbeatIntervalMs,
    logger: logger.child({ component: 'registration' }),
    onRemoved: () => void late.runtime?.removedByOperator(),
  });
  const drain = (reason: string) => late.runtime?.drain(reason) ?? Promise.resolve();
  const undrain = (reason: string) => late.runtime?.undrain(reason) ?? Promise.resolve(false);
  const control = new ControlService({
    store: new ControlStore(connections.blocking, connections.commands, keys, peerId),
    ledger,
    active,
    executor,
    orphans,
    drain,
    undrain,
    peerId,
    blockMs: options.controlBlockMs,
    logger: logger.child({ component: 'control' }),
  });
  const runtime = new AgentRuntime({
    peerId,
    registration,
    orphans,
    control,
    runWorker,
    pushWorker,
    queue,
    pushQueue,
    drainer,
    pushClient,
    active,
    executor,
    finals,
    options,
    logger,
  });
  const probe = connections.probe ?? connections.commands;
  const checks = { redis: redisReadiness(probe) };
  late.runtime = runtime;
  return {
    peerId,
    registry,
    active,
    control,
    executor,
    drain,
    undrain,
    adminApp: createAdminApp({ logger, registry, checks }),
    start: async () => {
      await runtime.start();
      logger.info({ capacity: agent.capacity, executor: executor.kind }, 'agent started');
    },
    stop: (reason) => runtime.stop(reason),
  };
}
