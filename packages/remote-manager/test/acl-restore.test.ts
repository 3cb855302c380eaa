import { Redis } from 'ioredis';
import { closeRedis, createRedis, createRedisKeys, waitForRedis, type RedisKeys } from '@rps/common';
import { startRedisServer, testLogger, uniquePrefix, type TestRedisServer } from '@rps/common/testing';
import { PeerRedisUsers, type PeerRedisCredentials } from '../src/acl/peer-redis-users';

// Redis keeps its ACL users outside the keyspace: with the AOF on and no aclfile, a restart
// keeps every run and machine record but forgets the peer users, which would lock every agent
// out. The manager keeps each password's hash in a key and re-creates the users from it.
describe('per-peer Redis users after a Redis restart', () => {
  let server: TestRedisServer;
  let admin: Redis;
  let keys: RedisKeys;
  let users: PeerRedisUsers;

  beforeAll(async () => {
    server = await startRedisServer({ appendonly: true });
    admin = createRedis({ url: server.url, role: 'worker', name: 'manager-admin', logger: testLogger() });
    await waitForRedis(admin);
    keys = createRedisKeys(uniquePrefix('acl-restore'));
    users = new PeerRedisUsers(admin, keys);
  });
  afterAll(async () => {
    await closeRedis(admin);
    await server.stop();
  });

  /** AUTH as the user on a fresh connection: 'OK', or rejects with Redis's answer. */
  const authAs = async (c: PeerRedisCredentials) => {
    const conn = new Redis(server.url, {
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      lazyConnect: true,
    });
    conn.on('error', () => undefined);
    try {
      await conn.connect();
      return await conn.call('AUTH', c.username, c.password);
    } finally {
      conn.disconnect();
    }
  };

  it('when Redis restarts without an aclfile then restore re-creates the kept users with their passwords, and not a removed one', async () => {
    const kept = await users.create('machine-a');
    const removed = await users.create('machine-b');
    await users.remove('machine-b');
    expect(await users.restore()).toEqual([]); // nothing lost yet

    await server.restart();
    await waitForRedis(admin);
    expect(await admin.call('ACL', 'GETUSER', kept.username)).toBeNull();
    await expect(authAs(kept)).rejects.toThrow(/WRONGPASS/);

    expect(await users.restore()).toEqual(['machine-a']);
    expect(await authAs(kept)).toBe('OK');
    await expect(authAs(removed)).rejects.toThrow(/WRONGPASS/);
    expect(await users.list()).toEqual([kept.username]);
    // The restored user has the same limits as a created one: outside the prefix is refused.
    const conn = new Redis(server.url, {
      username: kept.username,
      password: kept.password,
      maxRetriesPerRequest: 0,
    });
    conn.on('error', () => undefined);
    try {
      await expect(conn.get('other-app:secret')).rejects.toThrow(/NOPERM/);
      expect(await conn.set(`${keys.prefix}:probe`, '1')).toBe('OK');
    } finally {
      conn.disconnect();
    }
  });
});
