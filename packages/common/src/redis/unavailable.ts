/**
 * Which failures of a Redis command mean "Redis cannot serve us right now"
 * (retry later: an HTTP request answers 503) as opposed to a bug or a bad
 * command (500). Recognised by what ioredis and Redis say, since neither
 * gives these errors a common type.
 */

/** Why Redis is unavailable, as named in a 503 answer. */
export type RedisUnavailableReason =
  'connection' | 'timeout' | 'loading' | 'persistence' | 'memory' | 'busy' | 'readonly';

/** What each reason means, for the message of the answer. */
export const REDIS_UNAVAILABLE_TEXT: Record<RedisUnavailableReason, string> = {
  connection: 'no connection to Redis',
  timeout: 'Redis did not answer in time',
  loading: 'Redis is loading its data set',
  persistence: 'Redis refuses writes because it cannot persist to disk (MISCONF)',
  memory: 'Redis is out of memory (maxmemory reached, writes refused)',
  busy: 'Redis is busy running a script',
  readonly: 'Redis is a read-only replica or has no master (failover in progress)',
};

// Error replies by their first word (the Redis error code).
const REPLY_PREFIXES: Record<string, RedisUnavailableReason> = {
  LOADING: 'loading',
  MISCONF: 'persistence',
  OOM: 'memory',
  BUSY: 'busy',
  READONLY: 'readonly',
  MASTERDOWN: 'readonly',
  NOREPLICAS: 'readonly',
  TRYAGAIN: 'busy',
  CLUSTERDOWN: 'connection',
};

// ioredis's own messages for a command that never got an answer.
const CLIENT_MESSAGES: Array<[RegExp, RedisUnavailableReason]> = [
  [/^Connection is closed\.?$/, 'connection'],
  // A MULTI cut by a close after Redis answered part of it (ioredis aborts the rest).
  [/^Command aborted due to connection close$/, 'connection'],
  [/Stream isn't writeable/, 'connection'],
  [/max retries per request/i, 'connection'],
  [/^Command timed out$/, 'timeout'],
  [/^connect ETIMEDOUT$/, 'timeout'],
];

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * The reason when `err` says Redis is unreachable, overloaded or refusing
 * writes for now (connection closed or refused, command timeout, no offline
 * queue, LOADING, MISCONF, OOM, BUSY, READONLY...), else null. BullMQ passes
 * these errors through unchanged, so a failed `Queue.add` is recognised too.
 */
export function redisUnavailableReason(err: unknown): RedisUnavailableReason | null {
  if (!(err instanceof Error)) return null;
  if (err.name === 'MaxRetriesPerRequestError') return 'connection';
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return 'connection';
  const message = err.message;
  // A script's error reply may be wrapped: "ERR Error running script ... OOM command not allowed".
  const word = /^(?:ERR Error running script[^:]*:\s*)?-?([A-Z]+)\b/.exec(message)?.[1];
  const byReply = word === undefined ? undefined : REPLY_PREFIXES[word];
  if (byReply) return byReply;
  if (/\bOOM command not allowed\b/.test(message)) return 'memory';
  for (const [pattern, reason] of CLIENT_MESSAGES) if (pattern.test(message)) return reason;
  return null;
}

/** Whether `err` is a Redis unavailability (see {@link redisUnavailableReason}). */
export function isRedisUnavailable(err: unknown): boolean {
  return redisUnavailableReason(err) !== null;
}
