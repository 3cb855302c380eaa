import type { Logger } from 'pino';
import type { IpStore } from '../stores/ip.store';
import type { AddressSourceConfig } from './address-source.service';
import type { Notifier } from './notifier.service';
import type { WatchdogMetrics } from './watchdog.metrics';

/** What one check found. */
export type CheckResult =
  | { outcome: 'unchanged'; ip: string; source: string }
  | { outcome: 'changed'; ip: string; previous: string | null; source: string }
  | { outcome: 'error'; error: string };

/**
 * The public address check, every `intervalMs`: the override (when set, it
 * always wins, as in the original consumer-scheduler) or else the configured
 * source gives the address; a change is recorded, published and notified.
 * The change test is an atomic compare-and-set in Redis, so with several
 * watchdog replicas exactly one of them notifies each change.
 */
export class IpWatchService {
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<CheckResult> | undefined;
  private stopped = true;

  constructor(
    private readonly deps: {
      store: IpStore;
      notifier: Notifier;
      metrics: WatchdogMetrics;
      override: string | null;
      source: AddressSourceConfig;
      readAddress: (source: AddressSourceConfig) => Promise<string>;
      intervalMs: number;
      logger: Logger;
    },
  ) {
    this.log = deps.logger.child({ component: 'ip-watch' });
  }

  /** Checks now, then every interval (measured from the end of a check, so checks never overlap). */
  start(): void {
    this.stopped = false;
    const loop = async () => {
      await this.check();
      if (!this.stopped) this.timer = setTimeout(() => void loop(), this.deps.intervalMs);
    };
    void loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One check; concurrent callers share it. Never throws: a failed check keeps the recorded address. */
  check(): Promise<CheckResult> {
    this.running ??= this.runCheck().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * Tells the targets that missed the current address: a change recorded by a
   * life of the watchdog that died before notifying, or a target that was
   * down for longer than its retries. Not before catchUpAfterMs after the
   * change, so a replica that saw the change has told the targets by then
   * (one still retrying may make a target hear it twice; the body is the same).
   */
  private async catchUp(ip: string, now: number): Promise<void> {
    const { store } = this.deps;
    const [delivered, changedAt, uuid] = await Promise.all([
      store.delivered(),
      store.lastChangeAt(),
      store.instanceId(),
    ]);
    const started = this.deps.notifier.catchUp({ uuid, ip }, delivered, changedAt, now);
    if (started > 0)
      this.log.info({ ip, targets: started }, 'telling targets that missed the current address');
  }

  private async runCheck(): Promise<CheckResult> {
    try {
      const source = this.deps.override !== null ? 'override' : this.deps.source.kind;
      const ip = this.deps.override ?? (await this.deps.readAddress(this.deps.source));
      const now = Date.now();
      const previous = await this.deps.store.recordIfChanged(ip, source, now);
      if (previous === null) {
        this.deps.metrics.checks.inc({ outcome: 'unchanged' });
        await this.catchUp(ip, now);
        return { outcome: 'unchanged', ip, source };
      }
      this.deps.metrics.checks.inc({ outcome: 'changed' });
      this.log.info({ ip, previous: previous || null, source }, 'public address changed');
      const uuid = await this.deps.store.instanceId();
      this.deps.notifier.notify({ uuid, ip });
      return { outcome: 'changed', ip, previous: previous || null, source };
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.deps.metrics.checks.inc({ outcome: 'error' });
      this.log.warn({ error }, 'public address check failed');
      return { outcome: 'error', error };
    }
  }
}
