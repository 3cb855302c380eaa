import type { Redis } from 'ioredis';

/**
 * The `/readyz` check every service has: Redis answers PING. Use a
 * request-role connection so the check fails at once during an outage
 * instead of waiting in an offline queue.
 */
export function redisReadiness(redis: Redis): () => Promise<void> {
  return async () => {
    await redis.ping();
  };
}
