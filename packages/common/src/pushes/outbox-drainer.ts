import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { pushRunId, type OutboxEntry } from '../contracts/final-pushes.contract';
import { pushJobOptions } from '../contracts/run.contract';
import type { PushOutbox } from './push-outbox.store';

/** Retry policy of a push job (BullMQ attempts, exponential backoff from `backoffMs`). */
export interface PushRetry {
  attempts: number;
  backoffMs: number;
}

/**
 * The retry window of final pushes unless a service says otherwise: 12
 * attempts, 1 s doubling, so about 68 minutes of IVIS-core (or forwarder)
 * downtime are ridden out before a push is given up (and logged as such).
 */
export const DEFAULT_PUSH_RETRY: Readonly<PushRetry> = Object.freeze({ attempts: 12, backoffMs: 1000 });

export interface OutboxDrainerDeps {
  outbox: PushOutbox;
  queue: Queue;
  retry: PushRetry;
  logger: Logger;
  now?: () => number;
}

/**
 * Moves outbox entries onto the `pushes` queue under their own job ids, then
 * deletes them. A crash between the two leaves the entry, and the next drain
 * adds it again: BullMQ ignores an add whose id exists (finished push jobs are
 * kept, see pushJobOptions), so nothing is queued twice. Every push-worker
 * host (agents, scheduler-sync) drains periodically, so entries of a process
 * that died are queued by whoever is alive.
 */
export class OutboxDrainer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private readonly now: () => number;

  constructor(private readonly deps: OutboxDrainerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Queues one entry now, due or not (its writer, once its earlier pushes settled). */
  async drainOne(jobId: string): Promise<boolean> {
    const item = await this.deps.outbox.get(jobId);
    if (!item) return false;
    return this.move(item.jobId, item.entry, item.raw);
  }

  /** Queues every entry `owner`'s agent wrote, due or not (that agent's next life, whose earlier pushes are over). */
  async drainOwnedBy(owner: string): Promise<number> {
    let moved = 0;
    for (const item of await this.deps.outbox.ownedBy(owner)) {
      if (await this.move(item.jobId, item.entry, item.raw)) moved++;
    }
    return moved;
  }

  /** Queues every due entry; returns how many were queued. Overlapping calls share one pass. */
  drainDue(): Promise<number> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Drains every `intervalMs` (and once at once) until {@link stop}. */
  start(intervalMs: number): void {
    if (this.timer) return;
    const tick = () => {
      this.drainDue().catch((err: unknown) =>
        this.deps.logger.warn({ err: errText(err) }, 'push outbox drain failed'),
      );
    };
    tick();
    this.timer = setInterval(tick, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private async pass(): Promise<number> {
    let moved = 0;
    for (;;) {
      const items = await this.deps.outbox.due(this.now());
      for (const item of items) if (await this.move(item.jobId, item.entry, item.raw)) moved++;
      if (items.length < 100) return moved;
    }
  }

  private async move(jobId: string, entry: OutboxEntry | null, raw: string | null): Promise<boolean> {
    const { outbox, queue, retry, logger } = this.deps;
    if (!entry) {
      // Written by a version this one cannot read: never silently, but it must not block the others.
      logger.error({ jobId, raw: raw?.slice(0, 200) ?? null }, 'unreadable push outbox entry dropped');
      await outbox.remove(jobId);
      return false;
    }
    await queue.add(entry.data.kind, entry.data, pushJobOptions(entry.jobId, retry));
    await outbox.remove(jobId);
    logger.debug({ jobId, runId: pushRunId(entry.data) }, 'final pushes queued');
    return true;
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
