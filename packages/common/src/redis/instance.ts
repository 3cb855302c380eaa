import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RedisKeys } from './keys';

/**
 * The RPS instance identity every service shares (the consumer-scheduler's
 * `uuid`): the first service to start creates it (SET NX) and everyone reads
 * the winner's value, so replicas and restarts agree.
 */
export async function ensureInstanceId(redis: Redis, keys: RedisKeys): Promise<string> {
  await redis.set(keys.instanceId(), randomUUID(), 'NX');
  const id = await redis.get(keys.instanceId());
  if (!id) throw new Error('instance id vanished right after it was set');
  return id;
}
