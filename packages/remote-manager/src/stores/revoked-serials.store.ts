import type { RedisKeys } from '@rps/common';
import type { Redis } from 'ioredis';
import type { RevocationWriter } from '../services/certificates.service';

/** The gateway's revoked set (keys.revokedSerials(), decimal serials). */
export class RevokedSerialsStore implements RevocationWriter {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async revoke(decimalSerial: string): Promise<void> {
    await this.redis.sadd(this.keys.revokedSerials(), decimalSerial);
  }
}
