import fs from 'node:fs';
import path from 'node:path';
import type { SectionConfig } from '@rps/common';
import type { Logger } from 'pino';
import type { AgentOptions } from '../agent.options';
import type { IvisPushClient } from '../services/ivis-push.client';
import { BuildCache } from './builtin/build-cache';
import { BuiltinExecutor } from './builtin/builtin.executor';
import { JobLauncher } from './builtin/job-launcher';
import { JobRegistry } from './builtin/job-registry';
import { findSandboxTools, readHardLimits } from './builtin/job-sandbox';
import { interpreterPaths, resolveJobIdentity, type AgentIds } from './builtin/job-user';
import { TaskBuilder } from './builtin/task-builder';
import { TaskGate } from './builtin/task-gate';
import { assertReachable, clearRunDirs, secureWorkDir } from './builtin/work-dir';
import type { Executor } from './executor';
import { RjrExecutor } from './rjr/rjr.executor';

/** The folder (in the work dir) with a note per running job process (job-registry.ts). */
export const JOBS_DIR = 'jobs';

/** The file (in the work dir) that remembers what each task was built from. */
export const BUILD_CACHE_FILE = 'build-cache.json';

/**
 * Builds the executor the config names. For `builtin`, throws (the agent
 * does not start) when jobs could not be confined: a job user that is root
 * or missing, an agent that cannot switch users without `allowSameUser`,
 * prlimit/setpriv missing, a work dir the job user cannot reach.
 */
export function createExecutor(
  agent: SectionConfig<'agent'>,
  options: AgentOptions,
  pushClient: IvisPushClient,
  logger: Logger,
  agentIds: AgentIds = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
): Executor {
  const executor = agent.executor;
  if (executor.kind === 'rjr') {
    return new RjrExecutor({
      url: executor.url,
      pollMs: options.rjrPollMs,
      unreachableMs: options.rjrUnreachableMs,
      rowGraceMs: options.rjrRowGraceMs,
      finalAckMs: options.rjrFinalAckMs,
      stopResendMs: options.rjrStopResendMs,
      timeoutMs: options.httpTimeoutMs,
      logger: logger.child({ component: 'rjr-executor' }),
    });
  }
  const log = logger.child({ component: 'builtin-executor' });
  const { identity, tools } = confineJobs(executor, agentIds, log);
  const builder = new TaskBuilder({
    workDir: executor.workDir,
    python: executor.python,
    subtypes: executor.subtypes,
    pipArgs: options.pipArgs,
    ivisWheelDir: options.ivisWheelDir,
    buildTimeoutMs: options.buildTimeoutMs,
    cache: new BuildCache(path.join(executor.workDir, BUILD_CACHE_FILE)),
    logger: log,
  });
  return new BuiltinExecutor({
    builder,
    gate: new TaskGate(),
    sendRequest: (push) => pushClient.runRequest(push),
    ivis: agent.ivis,
    stopGraceMs: options.stopGraceMs,
    stderrTailBytes: options.stderrTailBytes,
    spawner: new JobLauncher(executor.python, log.child({ component: 'job-launcher' }), executor.nice),
    jobs: new JobRegistry(path.join(executor.workDir, JOBS_DIR), log),
    workDir: executor.workDir,
    identity,
    tools,
    limits: executor.limits,
    hardLimits: readHardLimits(),
    logger: log,
  });
}

type BuiltinConfig = Extract<SectionConfig<'agent'>['executor'], { kind: 'builtin' }>;

/** Who jobs run as and the tools that confine them; throws what stands in the way (job-user.ts, work-dir.ts). */
function confineJobs(executor: BuiltinConfig, agentIds: AgentIds, log: Logger) {
  const identity = resolveJobIdentity(executor, agentIds);
  const tools = findSandboxTools();
  secureWorkDir(executor.workDir, identity, [JOBS_DIR, BUILD_CACHE_FILE]);
  clearRunDirs(executor.workDir);
  if (identity.kind === 'user') {
    const python = interpreterPaths(executor.python);
    assertReachable(fs.realpathSync(python.executable), identity, 'agent.executor.python', true);
    assertReachable(path.join(python.prefix, 'lib'), identity, 'agent.executor.python');
    log.info({ runAs: identity.name, uid: identity.uid, limits: executor.limits }, 'jobs run confined');
  } else {
    log.warn(
      { uid: identity.uid },
      'JOBS RUN AS THE AGENT ITSELF (allowSameUser): a job can read the agent config and redis password and signal the agent; development only',
    );
  }
  return { identity, tools };
}
