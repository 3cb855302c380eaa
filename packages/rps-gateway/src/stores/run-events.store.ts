import type { Redis } from 'ioredis';
import type { RedisKeys, RunStateMessage } from '@rps/common';

/** Publishes run state changes on the run events channel (a hint for dashboards and tests). */
export class RunEventsStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async publish(message: RunStateMessage): Promise<void> {
    await this.redis.publish(this.keys.runEvents(), JSON.stringify(message));
  }
}
