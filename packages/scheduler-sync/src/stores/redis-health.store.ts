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
   * uptime. Uptime has whole seconds, so this is up to 1 s later than the
   * real start: the safe side for a grace that counts from it. Null when
   * the field is missing (a proxy in between, say).
   */
  async startedAt(now = Date.now()): Promise<number | null> {
    const info = await this.redis.info('server');
    const uptime = /^uptime_in_seconds:(\d+)/m.exec(info)?.[1];
    return uptime === undefined ? null : now - Number(uptime) * 1000;
  }
}
