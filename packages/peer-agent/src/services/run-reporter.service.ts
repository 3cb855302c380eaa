import {
  buildFinalPushes,
  RemoteRunState,
  type EmitPush,
  type FinalReport,
  type OutboxEntry,
  type StatusPush,
} from '@rps/common';
import type { Logger } from 'pino';
import type { IvisPushClient } from './ivis-push.client';

/** How a run ended (common's FinalReport without the ids the reporter knows). */
export type { FinalReport } from '@rps/common';

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
 * What one run tells IVIS-core while it runs, in order: pushes go out one
 * after the other through a promise chain, so RUNNING precedes output emits.
 * A push that still fails after the client's retries is logged and counted,
 * and the chain moves on. The final pushes are not sent from here: the
 * reporter builds them ({@link finalPushes}), they are recorded with the final
 * state (push outbox) and delivered through the durable `pushes` queue once
 * {@link quiesce} let the in-run pushes finish, so none of those overtakes them.
 */
export class RunReporter {
  private tail: Promise<void> = Promise.resolve();
  private readonly abort = new AbortController();
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
   * The final pushes of the run (common's buildFinalPushes), or null when the
   * executor's own runner sends them (rjr) and `force` is not set. Ends the
   * token refresh.
   */
  finalPushes(report: FinalReport, force = false): OutboxEntry | null {
    this.stopTokenRefresh();
    if (this.suppressed || (this.options.silent && !force)) return null;
    return buildFinalPushes(report);
  }

  /**
   * Resolves once the in-run pushes queued so far are done, or after
   * `waitMs`: then the rest is dropped and the one in flight abandoned (the
   * final status carries the whole output anyway), so nothing of this run
   * can reach IVIS-core after its final status.
   */
  async quiesce(waitMs: number): Promise<void> {
    const tail = this.tail;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      tail.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), waitMs))),
    ]);
    clearTimeout(timer);
    if (!timedOut) return;
    this.options.logger.warn({ waitMs }, 'in-run pushes still pending at the run end; dropped');
    this.suppressed = true;
    this.abort.abort();
    await tail;
  }

  /** The run was deleted: nothing more goes out (pushes already on the wire finish). */
  suppress(): void {
    this.suppressed = true;
    this.stopTokenRefresh();
  }

  private stopTokenRefresh(): void {
    clearInterval(this.tokenTimer);
    this.tokenTimer = undefined;
  }

  private enqueueStatus(body: StatusPush): void {
    this.enqueue('status', () => this.options.client.status(body, undefined, this.abort.signal));
  }

  private enqueueEmit(body: EmitPush): void {
    this.enqueue(body.type, () => this.options.client.emit(body, undefined, this.abort.signal));
  }

  private enqueue(what: string, send: () => Promise<unknown>): void {
    if (this.options.silent) return;
    this.tail = this.tail.then(async () => {
      if (this.suppressed || this.abort.signal.aborted) return;
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
