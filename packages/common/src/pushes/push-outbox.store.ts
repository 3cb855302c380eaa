import type { Redis } from 'ioredis';
import { outboxEntrySchema, type OutboxEntry } from '../contracts/final-pushes.contract';
import type { RedisKeys } from '../redis/keys';

/** One outbox entry as read: `entry` is null when the stored JSON is unusable. */
export interface OutboxItem {
  jobId: string;
  entry: OutboxEntry | null;
  raw: string | null;
}

/**
 * The push outbox (`keys.pushOutbox()` + `keys.pushOutboxDue()`): final pushes
 * written by the run-apply script together with the final state, waiting to
 * be put on the `pushes` queue. Only `RunStore.apply` adds entries; the
 * drainer ({@link OutboxDrainer}) reads and deletes them.
 */
export class PushOutbox {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** Entries due at `now` (oldest first), at most `limit`. */
  async due(now: number, limit = 100): Promise<OutboxItem[]> {
    const ids = await this.redis.zrangebyscore(this.keys.pushOutboxDue(), '-inf', now, 'LIMIT', 0, limit);
    if (ids.length === 0) return [];
    const raws = await this.redis.hmget(this.keys.pushOutbox(), ...ids);
    return ids.map((jobId, i) => ({ jobId, ...parse(raws[i] ?? null) }));
  }

  /** One entry, whether due or not (its writer drains it at once). */
  async get(jobId: string): Promise<OutboxItem | null> {
    const raw = await this.redis.hget(this.keys.pushOutbox(), jobId);
    return raw === null ? null : { jobId, ...parse(raw) };
  }

  /** Every entry written by `owner`'s agent, due or not (a full scan: for an agent's start only). */
  async ownedBy(owner: string): Promise<OutboxItem[]> {
    const items: OutboxItem[] = [];
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(this.keys.pushOutbox(), cursor, 'COUNT', 100);
      cursor = next;
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const item = { jobId: flat[i] ?? '', ...parse(flat[i + 1] ?? null) };
        if (item.entry?.owner === owner) items.push(item);
      }
    } while (cursor !== '0');
    return items;
  }

  /** Deletes an entry (after it was queued). Idempotent. */
  async remove(jobId: string): Promise<void> {
    await this.redis
      .multi()
      .hdel(this.keys.pushOutbox(), jobId)
      .zrem(this.keys.pushOutboxDue(), jobId)
      .exec();
  }

  /** Number of entries waiting. */
  size(): Promise<number> {
    return this.redis.zcard(this.keys.pushOutboxDue());
  }
}

function parse(raw: string | null): { entry: OutboxEntry | null; raw: string | null } {
  if (raw === null) return { entry: null, raw };
  try {
    const parsed = outboxEntrySchema.safeParse(JSON.parse(raw));
    return { entry: parsed.success ? parsed.data : null, raw };
  } catch {
    return { entry: null, raw };
  }
}
