import type { ClientMatch, RedisKeys } from '@rps/common';
import type { Redis } from 'ioredis';

/** One entry of the gateway's runtime allow-list as stored (the value is shown as read, even if malformed). */
export interface StoredClient {
  name: string;
  match: Record<string, unknown> | null;
  /** Set when the value is not a JSON object (the gateway ignores such an entry). */
  problem?: string;
}

/** The gateway's runtime allowed clients (keys.gatewayClients(); the gateway polls it). */
export class GatewayClientsStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async list(): Promise<StoredClient[]> {
    const hash = await this.redis.hgetall(this.keys.gatewayClients());
    return Object.entries(hash)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, value]) => {
        try {
          const match: unknown = JSON.parse(value);
          if (typeof match === 'object' && match !== null && !Array.isArray(match)) {
            return { name, match: match as Record<string, unknown> };
          }
        } catch {
          // reported below
        }
        return { name, match: null, problem: 'value is not a JSON object' };
      });
  }

  /** Adds or replaces an entry; true when it is new. */
  async set(name: string, match: ClientMatch): Promise<boolean> {
    return (await this.redis.hset(this.keys.gatewayClients(), name, JSON.stringify(match))) === 1;
  }

  /** True when there was such an entry. */
  async remove(name: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.gatewayClients(), name)) === 1;
  }
}
