import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { appError, type RedisKeys } from '@rps/common';
import { PEER_USER_PREFIX, passwordHash, peerAclRulesForHash } from './peer-acl-rules';

export { PEER_USER_PREFIX, peerAclRules } from './peer-acl-rules';

/** A machine id as it may appear in a username (no spaces: ACL arguments are words). */
const MACHINE_ID = /^[A-Za-z0-9._:-]{1,100}$/;

/** A peer's Redis credentials, for its setup bundle's `redis.url`. */
export interface PeerRedisCredentials {
  username: string;
  /** 32 random bytes, base64url: shown once (Redis keeps only its SHA-256). */
  password: string;
}

/**
 * One Redis ACL user per machine (docs/operations.md), made from the
 * manager's own admin connection: limited to the pool's key prefix and
 * channels and to the commands an agent needs ({@link peerAclRules}).
 * Changes are saved with `ACL SAVE` when Redis has an `aclfile`. Without one
 * Redis forgets its users when it restarts, while the keyspace survives in
 * the AOF; so each password's SHA-256 is also kept in a key
 * (`peerUserHashes`), and {@link PeerRedisUsers.restore} re-creates every
 * user Redis lost, with the same password the bundle carries.
 */
export class PeerRedisUsers {
  constructor(
    private readonly admin: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** The username of a machine's peer user. */
  static usernameOf(machineId: string): string {
    if (!MACHINE_ID.test(machineId)) {
      throw appError('invalid_request', `machine id ${JSON.stringify(machineId)} cannot name a Redis user`);
    }
    return `${PEER_USER_PREFIX}${machineId}`;
  }

  /**
   * Creates the machine's user, or replaces its rules and password if it
   * exists (a re-issued bundle): one atomic `ACL SETUSER ... reset ...`.
   * Sessions opened with the old password stay until they reconnect.
   */
  async create(machineId: string): Promise<PeerRedisCredentials> {
    const username = PeerRedisUsers.usernameOf(machineId);
    const password = randomBytes(32).toString('base64url');
    const hash = passwordHash(password);
    // The hash first: a user that exists has its hash kept, so restore() never misses one.
    await this.admin.hset(this.keys.peerUserHashes(), machineId, hash);
    await this.admin.call('ACL', 'SETUSER', username, ...peerAclRulesForHash(this.keys.prefix, hash));
    await this.save();
    return { username, password };
  }

  /**
   * Re-creates the peer users Redis no longer has (it restarted without an
   * aclfile) from their kept hashes, so the agents' bundles keep working.
   * Users that exist are left alone. Returns the machine ids restored.
   */
  async restore(): Promise<string[]> {
    const hashes = await this.admin.hgetall(this.keys.peerUserHashes());
    const restored: string[] = [];
    for (const [machineId, hash] of Object.entries(hashes)) {
      const username = PeerRedisUsers.usernameOf(machineId);
      if ((await this.admin.call('ACL', 'GETUSER', username)) !== null) continue;
      await this.admin.call('ACL', 'SETUSER', username, ...peerAclRulesForHash(this.keys.prefix, hash));
      restored.push(machineId);
    }
    if (restored.length > 0) await this.save();
    return restored;
  }

  /**
   * Deletes the machine's user and drops its sessions at once: the user is
   * switched off (no new AUTH), its connections killed (`CLIENT KILL USER`),
   * then deleted. Idempotent: an unknown user is a no-op.
   */
  async remove(machineId: string): Promise<void> {
    const username = PeerRedisUsers.usernameOf(machineId);
    // The hash first: a removed machine's user must never be restored.
    await this.admin.hdel(this.keys.peerUserHashes(), machineId);
    if ((await this.admin.call('ACL', 'GETUSER', username)) === null) return;
    const results = await this.admin
      .multi()
      .call('ACL', 'SETUSER', username, 'off', 'resetpass')
      .call('CLIENT', 'KILL', 'USER', username)
      .call('ACL', 'DELUSER', username)
      .exec();
    const failed = results?.find(([err]) => err !== null);
    if (failed?.[0]) throw failed[0];
    await this.save();
  }

  /** The usernames of the peer users (the manager's, by their prefix). */
  async list(): Promise<string[]> {
    const users = (await this.admin.call('ACL', 'USERS')) as string[];
    return users.filter((u) => u.startsWith(PEER_USER_PREFIX)).sort();
  }

  /** The machine ids that have a peer user. */
  async machineIds(): Promise<string[]> {
    return (await this.list()).map((u) => u.slice(PEER_USER_PREFIX.length));
  }

  /** `ACL SAVE` when Redis has an aclfile; without one there is nothing to save to. */
  private async save(): Promise<void> {
    try {
      await this.admin.call('ACL', 'SAVE');
    } catch (err) {
      if (/not configured to use an ACL file/i.test((err as Error).message)) return;
      throw err;
    }
  }
}
