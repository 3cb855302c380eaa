import type { Redis } from 'ioredis';
import { closeRedis } from '@rps/common';

/**
 * Dedicated connections for blocking commands (BLPOP). A blocking command
 * holds its connection until it returns, so it must never run on the shared
 * request connection: every other request (a DELETE sent while a stop waits
 * for its acknowledgement, for one) would queue behind it.
 */
export class BlockingPool {
  private readonly idle: Redis[] = [];
  private readonly busy = new Set<Redis>();
  private closed = false;

  constructor(
    private readonly create: () => Redis,
    private readonly maxIdle: number,
  ) {}

  /** Runs `fn` on a connection of its own; a connection whose command failed or was abandoned is dropped. */
  async use<T>(fn: (redis: Redis) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('blocking pool is closed');
    const redis = this.idle.pop() ?? this.create();
    this.busy.add(redis);
    let healthy = false;
    try {
      const result = await fn(redis);
      healthy = true;
      return result;
    } finally {
      this.busy.delete(redis);
      if (healthy && !this.closed && this.idle.length < this.maxIdle && redis.status === 'ready') {
        this.idle.push(redis);
      } else {
        redis.disconnect();
      }
    }
  }

  /** Closes idle connections and cuts busy ones (their waiters see an error). */
  async close(): Promise<void> {
    this.closed = true;
    const idle = this.idle.splice(0);
    for (const redis of this.busy) redis.disconnect();
    await Promise.all(idle.map((redis) => closeRedis(redis)));
  }
}
