import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  closeRedis,
  createRedis,
  createRedisKeys,
  QUEUES,
  runJobId,
  RunStore,
  waitForRedis,
  type RedisKeys,
  type SectionConfig,
} from '@rps/common';
import { testLogger, uniquePrefix } from '@rps/common/testing';
import { DEFAULT_AGENT_OPTIONS, type AgentOptions } from '../../src/agent.options';
import { createService, type AgentService } from '../../src/app';
import type { JobLimits } from '../../src/executors/builtin/job-sandbox';

type AgentConfig = SectionConfig<'agent'>;

/** Options every in-process test agent uses: fast timers, short grace. */
export const FAST_OPTIONS: Partial<AgentOptions> = {
  heartbeatIntervalMs: 300,
  outputFlushMs: 200,
  stopGraceMs: 1000,
  pushBackoffMs: 50,
  pushMaxBackoffMs: 200,
  lockDurationMs: 5000,
  stalledIntervalMs: 1000,
  controlBlockMs: 300,
  rjrPollMs: 100,
  shutdownRunsTimeoutMs: 5000,
  finalPushWaitMs: 2000,
  outboxDrainMs: 300,
  finalPushRetry: { attempts: 8, backoffMs: 50 },
};

/** The config's default job limits (agent.executor.limits). */
export const DEFAULT_JOB_LIMITS: JobLimits = {
  wallMs: 3_600_000,
  memoryMb: 2048,
  cpuSeconds: null,
  openFiles: 1024,
  processes: 512,
  fileSizeMb: 1024,
  outputBytes: 256 * 1024 ** 2,
};

/**
 * The job user of the tests: CI runs as root, and scripts/test.sh creates it.
 * A test run by a plain user runs jobs as that user (allowSameUser).
 */
export const TEST_JOB_USER = 'rps-job';

/**
 * The interpreter for job environments: the system's, which the job user can
 * reach (a python3 on PATH may be a pyenv shim under root's 0700 home).
 */
export const TEST_PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** What a test talks to: Redis (as the gateway would), the queue, the keys. */
export interface Pool {
  redis: Redis;
  keys: RedisKeys;
  runs: RunStore;
  queue: Queue;
  /** The gateway's part of the contract: RunStore.submit, then one BullMQ job per execution. */
  submit(runId: number, body: object): Promise<number>;
  close(): Promise<void>;
}

export async function openPool(redisUrl: string, prefix = uniquePrefix('agent')): Promise<Pool> {
  const redis = createRedis({ url: redisUrl, role: 'worker', name: 'test-pool', logger: testLogger() });
  await waitForRedis(redis);
  const keys = createRedisKeys(prefix);
  const runs = new RunStore(redis, keys);
  const queue = new Queue(QUEUES.runs, { connection: redis, prefix: keys.bullPrefix });
  return {
    redis,
    keys,
    runs,
    queue,
    submit: async (runId, body) => {
      const meta = body as { taskId: number; jobId: number };
      const result = await runs.submit(runId, Buffer.from(JSON.stringify(body)), {
        taskId: meta.taskId,
        jobId: meta.jobId,
      });
      await queue.add(
        'run',
        { runId, execution: result.execution },
        { jobId: runJobId(runId, result.execution) },
      );
      return result.execution;
    },
    close: async () => {
      await queue.close();
      await closeRedis(redis);
    },
  };
}

export interface TestAgent {
  service: AgentService;
  config: AgentConfig;
  workDir: string;
  stop(): Promise<void>;
}

/** Builds and starts an agent in this process, against `pool`'s prefix. */
export async function startTestAgent(
  redisUrl: string,
  pool: Pool,
  setup: {
    id?: string;
    ivisUrl: string;
    capacity?: number;
    executor?: AgentConfig['executor'];
    subtypes?: Record<string, { libs: string[] }>;
    limits?: Partial<JobLimits>;
    options?: Partial<AgentOptions>;
    /** Reuse a work dir (a restart of the same peer); it is then kept on stop. */
    workDir?: string;
    /** Default: silent unless TEST_LOG_LEVEL. */
    logger?: Logger;
  },
): Promise<TestAgent> {
  const logger = setup.logger ?? testLogger();
  const connect = (name: string) => createRedis({ url: redisUrl, role: 'worker', name, logger });
  const connections = {
    commands: connect('agent-commands'),
    blocking: connect('agent-control'),
    bull: connect('agent-bull'),
    events: connect('agent-events'),
  };
  await Promise.all(Object.values(connections).map((c) => waitForRedis(c)));
  const workDir = setup.workDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'rps-agent-'));
  const config: AgentConfig = {
    id: setup.id ?? 'peer-t',
    address: '127.0.0.1',
    capacity: setup.capacity ?? 2,
    admin: { host: '127.0.0.1', port: 0 },
    heartbeatIntervalMs: DEFAULT_AGENT_OPTIONS.heartbeatIntervalMs,
    maxOutputBytes: DEFAULT_AGENT_OPTIONS.maxOutputBytes,
    stopGraceMs: DEFAULT_AGENT_OPTIONS.stopGraceMs,
    finalPushWaitMs: DEFAULT_AGENT_OPTIONS.finalPushWaitMs,
    executor: setup.executor ?? {
      kind: 'builtin',
      workDir,
      python: TEST_PYTHON,
      subtypes: setup.subtypes ?? { __default__: { libs: [] } },
      buildTimeoutMs: DEFAULT_AGENT_OPTIONS.buildTimeoutMs,
      pipArgs: [],
      ivisWheelDir: null,
      runAs: TEST_JOB_USER,
      allowSameUser: true,
      nice: 10,
      limits: { ...DEFAULT_JOB_LIMITS, ...setup.limits },
    },
    ivis: {
      trustedUrlBase: setup.ivisUrl,
      sandboxUrlBase: 'http://127.0.0.1:10330',
      es: { host: '127.0.0.1', port: 10328 },
    },
  };
  const service = createService({
    agent: config,
    redisPrefix: pool.keys.prefix,
    connections,
    logger,
    version: 'test',
    adminUrl: 'http://127.0.0.1:0',
    options: { ...FAST_OPTIONS, ...setup.options },
  });
  await service.start();
  let stopped = false;
  return {
    service,
    config,
    workDir,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await service.stop('test end');
      await Promise.all(Object.values(connections).map((c) => closeRedis(c)));
      if (!setup.workDir) fs.rmSync(workDir, { recursive: true, force: true });
    },
  };
}
