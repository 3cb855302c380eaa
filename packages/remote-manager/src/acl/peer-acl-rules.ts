import { createHash } from 'node:crypto';

// The ACL rules of a peer's Redis user (docs/operations.md, "Per-peer Redis
// users"). Found by running a real agent under a restricted user
// (test/acl.test.ts) and by reading what BullMQ's Lua scripts call (commands
// run inside a script are checked against the caller's ACL too).

/** Usernames of peer users start with this, so list() finds only the manager's own. */
export const PEER_USER_PREFIX = 'rps-peer-';

/**
 * Data commands by category: strings, lists, hashes, sets, sorted sets and
 * streams (run records, outboxes, BullMQ's job hashes and queues), key
 * lifetimes (`@keyspace`: EXPIRE, DEL, EXISTS, ...), Lua (`@scripting`:
 * EVAL/EVALSHA for BullMQ and the RPS scripts), pub/sub, MULTI/EXEC,
 * blocking reads (BZPOPMIN, XREADGROUP, BLPOP) and connection commands
 * (AUTH, HELLO, PING, SELECT).
 */
const ALLOWED_CATEGORIES = [
  '@read',
  '@write',
  '@string',
  '@list',
  '@hash',
  '@set',
  '@sortedset',
  '@stream',
  '@bitmap',
  '@hyperloglog',
  '@keyspace',
  '@scripting',
  '@pubsub',
  '@transaction',
  '@blocking',
  '@connection',
];

/**
 * Taken away again after the categories: everything Redis marks dangerous
 * or administrative (FLUSHALL, FLUSHDB, KEYS, CONFIG, DEBUG, SHUTDOWN,
 * MONITOR, CLIENT KILL/LIST, REPLICAOF, SAVE, MIGRATE, RESTORE, SORT, ACL,
 * MODULE, INFO, ...), the commands that see past the key prefix (SCAN and
 * RANDOMKEY list every key name; MOVE/SWAPDB reach other databases), and the
 * script and function commands that affect other clients (SCRIPT FLUSH
 * empties everyone's script cache, SCRIPT KILL ends another client's script,
 * SCRIPT DEBUG SYNC blocks the server, FUNCTION loads server-wide code).
 */
const DENIED = [
  '-@dangerous',
  '-@admin',
  '-scan',
  '-randomkey',
  '-move',
  '-swapdb',
  '-script|flush',
  '-script|kill',
  '-script|debug',
  '-function',
  '-fcall',
  '-fcall_ro',
];

/**
 * Given back after the denials, each needed and harmless: INFO (BullMQ reads
 * `redis_version` and `maxmemory_policy` when a queue or worker starts; it
 * shows server statistics, no data), TIME (BullMQ's scripts read the clock),
 * and the CLIENT subcommands about the connection itself (ioredis names its
 * connections; CLIENT ID for blocking-connection bookkeeping).
 */
const GIVEN_BACK = ['+info', '+time', '+client|setname', '+client|getname', '+client|id', '+client|info'];

/** Escapes a key prefix for an ACL glob pattern (`*`, `?`, `[`, `]` and `\` are special there). */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** The SHA-256 of a password as `ACL SETUSER` takes it (`#<hex>`): the clear password never reaches Redis. */
export function passwordHash(password: string): string {
  return createHash('sha256').update(password).digest('hex');
}

/**
 * The full `ACL SETUSER` argument list after the username: reset first (so a
 * rerun replaces every rule and the old password, in one atomic command),
 * then the keys `<prefix>:*` (which BullMQ's `<prefix>:bull:*` is part of)
 * and the channels `<prefix>:*`, then the commands.
 */
export function peerAclRules(prefix: string, password: string): string[] {
  return peerAclRulesForHash(prefix, passwordHash(password));
}

/** {@link peerAclRules} from the password's SHA-256 (hex): how a lost user is restored. */
export function peerAclRulesForHash(prefix: string, sha256Hex: string): string[] {
  const pattern = `${globEscape(prefix)}:*`;
  return [
    'reset',
    'on',
    `#${sha256Hex}`,
    'resetkeys',
    `~${pattern}`,
    'resetchannels',
    `&${pattern}`,
    '-@all',
    ...ALLOWED_CATEGORIES.map((c) => `+${c}`),
    ...DENIED,
    ...GIVEN_BACK,
  ];
}
