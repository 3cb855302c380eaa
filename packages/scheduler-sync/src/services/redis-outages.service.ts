import type { Logger } from 'pino';

/** What {@link RedisOutages} reads Redis through (a store). */
export interface RedisHealth {
  ping(): Promise<void>;
  startedAt(now?: number): Promise<number | null>;
}

/**
 * Outage accounting for liveness (issue 10 item 5): while Redis was
 * unreachable, live agents could not heartbeat either, so that time must not
 * count as their silence. Two sources, because either can miss an outage:
 *
 * - this process's own probe: a PING every `probeMs` on the worker
 *   connection (which waits out an outage); a reply that comes more than
 *   `gapMs` after the previous one means Redis did not serve anyone in
 *   between (down, partitioned, or stalled as by `DEBUG SLEEP`), and the end
 *   of that gap counts as the moment heartbeats could resume;
 * - Redis's own start time (`INFO server` uptime), which also covers a
 *   restart that happened while this scheduler was not running.
 *
 * {@link since} is the later of the two. Liveness declares no peer lost
 * while it is within the heartbeat timeout, i.e. a peer's silence counts
 * from `max(last heartbeat, since)`.
 */
export class RedisOutages {
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;
  private lastReplyAt = 0;
  private recoveredAt = 0;

  constructor(
    private readonly deps: {
      health: RedisHealth;
      /** How often the probe pings. */
      probeMs: number;
      /** A silence between two replies longer than this counts as an outage. */
      gapMs: number;
      logger: Logger;
      now?: () => number;
    },
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.probe(), this.deps.probeMs);
    this.timer.unref();
    void this.probe();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Records a probe reply that arrived at `at` (exported for the unit test). */
  noteReply(at: number): void {
    if (this.lastReplyAt > 0 && at - this.lastReplyAt > this.deps.gapMs) {
      this.recoveredAt = Math.max(this.recoveredAt, at);
      this.deps.logger.warn(
        { unreachableMs: at - this.lastReplyAt },
        'redis was unreachable: liveness counts heartbeat silence from now',
      );
    }
    this.lastReplyAt = Math.max(this.lastReplyAt, at);
  }

  /** Since when (ms) Redis has been reachable for everyone, as far as can be told. */
  async since(): Promise<number> {
    const startedAt = await this.deps.health.startedAt(this.now());
    return Math.max(this.recoveredAt, startedAt ?? 0);
  }

  private async probe(): Promise<void> {
    if (this.inFlight) return;
    this.inFlight = true;
    try {
      await this.deps.health.ping();
      this.noteReply(this.now());
    } catch (err) {
      // A worker connection retries forever; an error here is the connection closing.
      this.deps.logger.debug({ err }, 'redis probe failed');
    } finally {
      this.inFlight = false;
    }
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }
}
