import type { Logger } from 'pino';
import { request, type Dispatcher } from 'undici';
import type { WatchdogMetrics } from './watchdog.metrics';

/** The consumer-scheduler's notification body. */
export interface IpNotification {
  uuid: string;
  ip: string;
}

/** Retry policy per target. */
export interface NotifyRetryOptions {
  /** Attempts per target and change, the first one included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** The final outcome of one change's notification to one target. */
export interface NotificationResult {
  target: string;
  ip: string;
  outcome: 'delivered' | 'gave_up' | 'superseded';
  attempts: number;
  at: number;
  error?: string;
}

/** A URL without credentials or query, fit for logs (and the key a target's delivered address is kept under). */
export function shownTarget(target: string): string {
  try {
    const url = new URL(target);
    return `${url.origin}${url.pathname}`;
  } catch {
    return '(unparseable url)';
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Posts `{uuid, ip}` to every configured target, concurrently and
 * independently: each target has its own retry loop with exponential backoff
 * and a bounded number of attempts, so a target that is down never delays
 * another, nor the next check (notify returns at once). A newer change
 * supersedes a target's delivery still in progress, so a slow target never
 * ends up told an older address after a newer one.
 */
export class Notifier {
  private readonly log: Logger;
  private readonly inFlight = new Map<string, { controller: AbortController; done: Promise<void> }>();
  /** When each target's last delivery ended (any outcome), for catchUp's spacing. */
  private readonly lastEnded = new Map<string, number>();

  constructor(
    private readonly deps: {
      targets: readonly string[];
      timeoutMs: number;
      retry: NotifyRetryOptions;
      dispatcher: Dispatcher;
      metrics: WatchdogMetrics;
      logger: Logger;
      /** See WatchdogTuning.catchUpAfterMs. */
      catchUpAfterMs: number;
      onResult?: (result: NotificationResult) => void;
    },
  ) {
    this.log = deps.logger.child({ component: 'notifier' });
  }

  /** Starts delivering `notification` to every target; does not wait. */
  notify(notification: IpNotification): void {
    for (const target of this.deps.targets) this.start(target, notification);
  }

  /**
   * Starts delivering `notification` to the targets that were not told its
   * address (`delivered`: shown target -> last address delivered), are not
   * being told now, and have not ended a delivery within catchUpAfterMs.
   * Nothing while the address changed less than catchUpAfterMs ago
   * (`changedAt`): the replica that recorded the change is telling them.
   * Returns how many it started.
   */
  catchUp(
    notification: IpNotification,
    delivered: ReadonlyMap<string, string>,
    changedAt: number | null,
    now = Date.now(),
  ): number {
    if (changedAt !== null && now - changedAt < this.deps.catchUpAfterMs) return 0;
    let started = 0;
    for (const target of this.deps.targets) {
      if (delivered.get(shownTarget(target)) === notification.ip || this.inFlight.has(target)) continue;
      const ended = this.lastEnded.get(target);
      if (ended !== undefined && now - ended < this.deps.catchUpAfterMs) continue;
      this.start(target, notification);
      started++;
    }
    return started;
  }

  private start(target: string, notification: IpNotification): void {
    this.inFlight.get(target)?.controller.abort();
    const controller = new AbortController();
    const done = this.deliver(target, notification, controller.signal).finally(() => {
      if (this.inFlight.get(target)?.controller === controller) this.inFlight.delete(target);
    });
    this.inFlight.set(target, { controller, done });
  }

  /** Resolves when no delivery is in progress (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight.values()].map((f) => f.done));
  }

  /** Abandons every delivery in progress. */
  async stop(): Promise<void> {
    for (const { controller } of this.inFlight.values()) controller.abort();
    await this.idle();
  }

  private async deliver(target: string, notification: IpNotification, signal: AbortSignal): Promise<void> {
    const { attempts, baseDelayMs, maxDelayMs } = this.deps.retry;
    let error = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (signal.aborted)
        return this.finish({
          target,
          ip: notification.ip,
          outcome: 'superseded',
          attempts: attempt - 1,
          at: Date.now(),
        });
      try {
        await this.post(target, notification, signal);
        this.deps.metrics.notifyAttempts.inc({ outcome: 'ok' });
        return this.finish({
          target,
          ip: notification.ip,
          outcome: 'delivered',
          attempts: attempt,
          at: Date.now(),
        });
      } catch (err) {
        this.deps.metrics.notifyAttempts.inc({ outcome: 'failed' });
        error = err instanceof Error ? err.message : String(err);
        this.log.warn({ target: shownTarget(target), attempt, error }, 'notification attempt failed');
      }
      if (attempt < attempts) await sleep(Math.min(baseDelayMs * 2 ** (attempt - 1), maxDelayMs), signal);
    }
    const outcome = signal.aborted ? 'superseded' : 'gave_up';
    this.finish({ target, ip: notification.ip, outcome, attempts, at: Date.now(), error });
  }

  private async post(target: string, notification: IpNotification, signal: AbortSignal): Promise<void> {
    const res = await request(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(notification),
      dispatcher: this.deps.dispatcher,
      signal: AbortSignal.any([signal, AbortSignal.timeout(this.deps.timeoutMs)]),
    });
    await res.body.dump();
    if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`HTTP ${res.statusCode}`);
  }

  private finish(result: NotificationResult): void {
    this.lastEnded.set(result.target, result.at);
    this.deps.metrics.notifications.inc({ outcome: result.outcome });
    const fields = { target: shownTarget(result.target), ip: result.ip, attempts: result.attempts };
    if (result.outcome === 'delivered') this.log.info(fields, 'target notified');
    else this.log.warn({ ...fields, outcome: result.outcome, error: result.error }, 'target not notified');
    this.deps.onResult?.(result);
  }
}
