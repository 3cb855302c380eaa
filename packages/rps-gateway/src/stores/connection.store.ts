import type { Redis } from 'ioredis';

/**
 * The state of the gateway's request-role connection, for code that must
 * wait out a short outage (a submit retried within IVIS-core's budget).
 */
export class ConnectionStore {
  constructor(private readonly redis: Redis) {}

  /** Resolves true as soon as the connection is ready (at once if it is), false after `timeoutMs`. */
  whenReady(timeoutMs: number): Promise<boolean> {
    if (this.redis.status === 'ready') return Promise.resolve(true);
    if (timeoutMs <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.redis.on('ready', onReady);
    });
  }
}
