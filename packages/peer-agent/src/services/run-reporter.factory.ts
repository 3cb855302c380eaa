import type { Logger } from 'pino';
import type { AgentOptions } from '../agent.options';
import type { IvisPushClient } from './ivis-push.client';
import { RunReporter } from './run-reporter.service';

/** Builds reporters with the agent's push client and settings. */
export class ReporterFactory {
  constructor(
    private readonly client: IvisPushClient,
    private readonly options: Pick<AgentOptions, 'tokenRefreshMs'>,
    private readonly logger: Logger,
  ) {}

  create(run: { runId: number; jobId: number; accessToken: string | null; silent: boolean }): RunReporter {
    return new RunReporter({
      ...run,
      client: this.client,
      tokenRefreshMs: this.options.tokenRefreshMs,
      logger: this.logger.child({ runId: run.runId }),
    });
  }
}

/** Failure messages of runs that end without their job deciding. */
export const MESSAGES = {
  agentRestarted: 'agent restarted while the run was running',
  cancelled: 'Run Cancelled\n',
  cancelledBeforeStart: 'INFO: Run Cancelled\n',
  shutdown: 'Run Cancelled: agent shutting down\n',
} as const;
