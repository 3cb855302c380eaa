import path from 'node:path';
import type { SectionConfig } from '@rps/common';
import type { Logger } from 'pino';
import type { AgentOptions } from '../agent.options';
import type { IvisPushClient } from '../services/ivis-push.client';
import { BuildCache } from './builtin/build-cache';
import { BuiltinExecutor } from './builtin/builtin.executor';
import { JobRegistry } from './builtin/job-registry';
import { TaskBuilder } from './builtin/task-builder';
import { TaskGate } from './builtin/task-gate';
import type { Executor } from './executor';
import { RjrExecutor } from './rjr/rjr.executor';

/** The folder (in the work dir) with a note per running job process (job-registry.ts). */
export const JOBS_DIR = 'jobs';

/** The file (in the work dir) that remembers what each task was built from. */
export const BUILD_CACHE_FILE = 'build-cache.json';

/** Builds the executor the config names. */
export function createExecutor(
  agent: SectionConfig<'agent'>,
  options: AgentOptions,
  pushClient: IvisPushClient,
  logger: Logger,
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
    jobs: new JobRegistry(path.join(executor.workDir, JOBS_DIR), log),
    logger: log,
  });
}
