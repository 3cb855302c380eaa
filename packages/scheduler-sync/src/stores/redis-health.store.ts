import type { Redis } from 'ioredis';

/** What the scheduler asks Redis about Redis itself (outage accounting for liveness). */
export class RedisHealthStore {
  constructor(private readonly redis: Redis) {}

  /** One round trip; on a worker-role connection it waits out an outage. */
  async ping(): Promise<void> {
    await this.redis.ping();
  }

  /**
   * When the Redis server started (ms, this host's clock), from `INFO server`
   * uptime, or a little later: the safe side for a grace that counts from it.
   * Uptime is the difference of two whole-second clock readings, so it can
   * be 1 s more than the real time up (start at x.99 s, read at x+1.00 s);
   * one second is taken off it for that. Null when the field is missing (a
   * proxy in between, say).
   */
  async startedAt(now = Date.now()): Promise<number | null> {
    const info = await this.redis.info('server');
    const uptime = /^uptime_in_seconds:(\d+)/m.exec(info)?.[1];
    return uptime === undefined ? null : now - Math.max(0, Number(uptime) - 1) * 1000;
  }
}
