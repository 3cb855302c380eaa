import type { Redis } from 'ioredis';
import type { RedisKeys } from '@rps/common';

/** The revoked client certificates (a set of decimal serials kept by remote-manager). */
export class RevocationStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** Rejects when Redis is unreachable: callers must fail closed. */
  async isRevoked(decimalSerial: string): Promise<boolean> {
    return (await this.redis.sismember(this.keys.revokedSerials(), decimalSerial)) === 1;
  }
}
