import type { Redis } from 'ioredis';
import { clientIdentitySchema, type ClientIdentity, type RedisKeys } from '@rps/common';

/** The allowed clients read from Redis, and the entries that could not be used. */
export interface StoredClients {
  clients: ClientIdentity[];
  /** Field name and what is wrong with its value, for a log line. */
  invalid: Array<{ name: string; problem: string }>;
}

/**
 * The runtime allow-list (`keys.gatewayClients()`): a hash of client name to
 * JSON `{fingerprint256}` or `{serial, issuer}`, written by remote-manager or an
 * operator with redis-cli. Every entry is validated here (another deployable
 * writes it); a bad one is reported, never trusted.
 */
export class ClientAllowListStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** Rejects when Redis is unreachable. */
  async read(): Promise<StoredClients> {
    const hash = await this.redis.hgetall(this.keys.gatewayClients());
    const out: StoredClients = { clients: [], invalid: [] };
    for (const [name, value] of Object.entries(hash)) {
      let fields: unknown;
      try {
        fields = JSON.parse(value);
      } catch {
        out.invalid.push({ name, problem: 'value is not JSON' });
        continue;
      }
      const parsed = clientIdentitySchema.safeParse(
        typeof fields === 'object' && fields !== null ? { ...fields, name } : fields,
      );
      if (parsed.success) out.clients.push(parsed.data);
      else {
        const problem = parsed.error.issues.map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`);
        out.invalid.push({ name, problem: problem.join('; ') });
      }
    }
    return out;
  }
}
