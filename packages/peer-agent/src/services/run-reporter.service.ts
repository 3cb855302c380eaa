import { RemoteRunState, type EmitPush, type StatusPush } from '@rps/common';
import type { Logger } from 'pino';
import type { IvisPushClient } from './ivis-push.client';

/** How a run ended, as IVIS-core must learn it. */
export interface FinalReport {
  /** `stop` also sends `run/<id>/stop` after the fail events. */
  event: 'succeed' | 'fail' | 'stop';
  startedAt?: string;
  finishedAt: string;
  /** The run's stdout as stored (capped). */
  output: string;
  /** The failure message (empty on success). */
  errMsg: string;
}

export interface RunReporterOptions {
  client: IvisPushClient;
  runId: number;
  jobId: number;
  accessToken: string | null;
  /** The executor's own runner pushes (rjr): only a forced final push goes out. */
  silent: boolean;
  tokenRefreshMs: number;
  logger: Logger;
}

/** The notice emitted (once) when a run's output reaches the cap (ivis-protocol.md 3.4). */
export const OUTPUT_CAP_EMIT = 'INFO: max output capacity reached';

/**
 * Everything one run tells IVIS-core, in order: pushes go out one after the
 * other through a promise chain, so RUNNING precedes output emits, which
 * precede the final status and its events. A push that still fails after the
 * client's retries is logged and counted, and the chain moves on: a stuck
 * IVIS-core must not hold the run (and its capacity slot) forever.
 */
export class RunReporter {
  private tail: Promise<void> = Promise.resolve();
  private tokenTimer: NodeJS.Timeout | undefined;
  private suppressed = false;

  constructor(private readonly options: RunReporterOptions) {}

  running(startedAt: string): void {
    if (this.options.silent) return;
    this.enqueueStatus({
      runId: this.options.runId,
      status: { status: RemoteRunState.RUNNING, started_at: startedAt },
    });
  }

  /** New output chunks only: each chunk is emitted once. */
  output(chunks: string[]): void {
    if (this.options.silent || chunks.length === 0) return;
    this.enqueueEmit({ type: `run/${this.options.runId}/output`, data: chunks });
  }

  outputCapped(): void {
    if (this.options.silent) return;
    this.enqueueEmit({ type: `run/${this.options.runId}/output`, data: OUTPUT_CAP_EMIT });
  }

  /** `access_token_refresh` now and every period until the run ends (6.4). */
  startTokenRefresh(): void {
    const { accessToken, silent, runId, jobId, tokenRefreshMs } = this.options;
    if (silent || !accessToken || this.tokenTimer) return;
    const refresh = () => {
      // Not chained: a refresh must not wait behind retries of output pushes.
      this.options.client
        .emit({ type: 'access_token_refresh', data: { runId, jobId, accessToken } })
        .catch((err: unknown) =>
          this.options.logger.warn({ err: errText(err) }, 'access token refresh failed'),
        );
    };
    refresh();
    this.tokenTimer = setInterval(refresh, tokenRefreshMs);
  }

  /**
   * The final status (RUN_FAIL carries `"<errMsg>\n\nLog:\n<output>"` as the RJR
   * does) and the events after it. Resolves when every queued push is done.
   */
  final(report: FinalReport, force = false): Promise<void> {
    this.stopTokenRefresh();
    if (this.options.silent && !force) return this.tail;
    const { runId } = this.options;
    const succeeded = report.event === 'succeed';
    const status: StatusPush['status'] = {
      status: succeeded ? RemoteRunState.SUCCESS : RemoteRunState.RUN_FAIL,
      finished_at: report.finishedAt,
    };
    if (report.startedAt) status.started_at = report.startedAt;
    const output = succeeded ? report.output : `${report.errMsg}\n\nLog:\n${report.output}`;
    this.enqueueStatus({ runId, status, output }, true);
    if (succeeded) this.enqueueEmit({ type: `run/${runId}/success` }, true);
    else this.enqueueEmit({ type: `run/${runId}/fail`, data: report.errMsg }, true);
    if (report.event === 'stop') this.enqueueEmit({ type: `run/${runId}/stop` }, true);
    return this.tail;
  }

  /** The run was deleted: nothing more goes out (pushes already on the wire finish). */
  suppress(): void {
    this.suppressed = true;
    this.stopTokenRefresh();
  }

  /** Resolves when the queued pushes are done. */
  settled(): Promise<void> {
    return this.tail;
  }

  private stopTokenRefresh(): void {
    clearInterval(this.tokenTimer);
    this.tokenTimer = undefined;
  }

  private enqueueStatus(body: StatusPush, force = false): void {
    this.enqueue('status', () => this.options.client.status(body), force);
  }

  private enqueueEmit(body: EmitPush, force = false): void {
    this.enqueue(body.type, () => this.options.client.emit(body), force);
  }

  private enqueue(what: string, send: () => Promise<unknown>, force: boolean): void {
    if (this.options.silent && !force) return;
    this.tail = this.tail.then(async () => {
      if (this.suppressed) return;
      try {
        await send();
      } catch (err) {
        this.options.logger.warn({ push: what, err: errText(err) }, 'push to ivis-core failed');
      }
    });
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
