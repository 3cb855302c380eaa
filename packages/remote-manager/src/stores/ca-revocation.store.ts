import type { Redis } from 'ioredis';
import type { RedisKeys } from '@rps/common';
import type { RevocationWriter } from '../ca/ca.types';

/**
 * The revoked client certificates as the gateway reads them: the Redis set
 * `keys.revokedSerials()` of decimal serials, which the gateway asks on new
 * connections and again within `gateway.revocationRecheckMs` on open ones.
 */
export class CaRevocationStore implements RevocationWriter {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** Adds a decimal serial (idempotent). Rejects when Redis is unreachable: the caller must not report success. */
  async revoke(decimalSerial: string): Promise<void> {
    if (!/^[0-9]+$/.test(decimalSerial)) throw new Error(`not a decimal serial: ${decimalSerial}`);
    await this.redis.sadd(this.keys.revokedSerials(), decimalSerial);
  }

  /** Whether a decimal serial is in the set. */
  async isRevoked(decimalSerial: string): Promise<boolean> {
    return (await this.redis.sismember(this.keys.revokedSerials(), decimalSerial)) === 1;
  }

  /** Every revoked decimal serial. */
  async list(): Promise<string[]> {
    return this.redis.smembers(this.keys.revokedSerials());
  }
}
