import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

/**
 * How a connection is used decides how it fails (STYLE.md rule 6):
 * - `request`: serves an HTTP request; a command fails at once when Redis is
 *   down, and after {@link REQUEST_COMMAND_TIMEOUT_MS} when Redis hangs, so
 *   the caller can answer 503 instead of hanging.
 * - `worker`: BullMQ workers, blocking readers and subscribers; commands wait
 *   and the connection retries forever.
 */
export type RedisRole = 'request' | 'worker';

/** What {@link createRedis} needs. */
export interface CreateRedisOptions {
  url: string;
  role: RedisRole;
  /** Shows in `CLIENT LIST` and in logs. */
  name: string;
  logger: Logger;
}

const MAX_BACKOFF_MS = 2000;

/**
 * The longest a request-role command waits for its answer: IVIS-core gives
 * up on a request after 2 s, so waiting longer only piles requests up.
 */
export const REQUEST_COMMAND_TIMEOUT_MS = 2000;

/** Connection options by role; exported for BullMQ, which builds some connections itself. */
export function redisOptionsFor(role: RedisRole, name: string): RedisOptions {
  const common: RedisOptions = {
    connectionName: name,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), MAX_BACKOFF_MS),
    lazyConnect: false,
    disconnectTimeout: 500,
  };
  return role === 'request'
    ? {
        ...common,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        connectTimeout: 2000,
        commandTimeout: REQUEST_COMMAND_TIMEOUT_MS,
      }
    : { ...common, enableOfflineQueue: true, maxRetriesPerRequest: null };
}

/**
 * Opens a Redis connection for a role, with an error listener attached (an
 * ioredis client without one crashes the process on the first network error).
 * Errors are logged once per outage, not once per retry.
 */
export function createRedis({ url, role, name, logger }: CreateRedisOptions): Redis {
  const redis = new Redis(url, redisOptionsFor(role, name));
  const log = logger.child({ component: 'redis', connection: name });
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    log.warn({ err: { message: err.message } }, 'redis connection error');
  });
  redis.on('ready', () => {
    if (down) log.info('redis connection restored');
    down = false;
  });
  return redis;
}

/** Resolves once the connection is ready, or rejects after `timeoutMs`. */
export async function waitForRedis(redis: Redis, timeoutMs = 10000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`redis not ready after ${timeoutMs} ms (status ${redis.status})`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}

/** Closes a connection politely, falling back to a hard disconnect when Redis is unreachable. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  if (redis.status !== 'ready') {
    // QUIT would sit in the offline queue until Redis comes back.
    redis.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.quit(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('quit timeout')), 1000);
      }),
    ]);
  } catch {
    redis.disconnect();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Subscribes to a channel once the connection is ready. A SUBSCRIBE sent
 * while ioredis still runs its connect-time ready check (INFO) switches the
 * connection to subscriber mode first; the INFO then fails and the
 * connection never becomes ready, so no message ever arrives. Every
 * subscriber goes through here.
 */
export async function subscribeWhenReady(redis: Redis, channel: string): Promise<void> {
  await waitForRedis(redis);
  await redis.subscribe(channel);
}
