import { z } from 'zod';

/**
 * Peer registration, as stored in the hash at `keys.peer(peerId)` (all values
 * strings in Redis; parse with {@link parsePeerRecord}). Written by the
 * peer-agent on register, heartbeat, drain and clean stop, by scheduler-sync
 * (state `lost`) and by an operator or remote-manager through
 * {@link PeerAdmin} (state `removed`). Producers and consumers are separate
 * deployables, so readers validate (STYLE.md rule 4).
 */
export const PEER_STATES = ['active', 'draining', 'stopped', 'lost', 'removed'] as const;
/**
 * `active` takes runs; `draining` finishes its runs but takes no new ones;
 * `stopped` shut down cleanly and will be back (still a member of the pool:
 * durable commands keep reaching its stream, but it forwards nothing and is
 * never declared lost); `lost` missed its heartbeat; `removed` taken out for
 * good by an operator (records pruned after the retention time). Who sets
 * which: docs/redis.md "Peer states".
 */
export type PeerState = (typeof PEER_STATES)[number];

/** Hash flags are '1'/'0' in Redis (older records have none: false). */
const hashFlag = z.preprocess((v) => v === true || v === '1' || v === 'true', z.boolean());

/** The parsed peer record. */
export const peerRecordSchema = z.object({
  id: z.string().min(1),
  /** The address the RPS sees this peer at (the forwarder's allow-list). IPv4 or IPv6 literal. */
  address: z.string().min(1),
  capacity: z.coerce.number().int().min(1),
  /** `builtin` or `rjr`. */
  executor: z.string().min(1),
  version: z.string().default(''),
  state: z.enum(PEER_STATES),
  /** Where the agent's admin listener answers (`http://host:port`), for scheduler-sync's probe. */
  adminUrl: z.string().default(''),
  registeredAt: z.coerce.number().int(),
  heartbeatAt: z.coerce.number().int(),
  /** Drain asked (SIGUSR2 or the `drain` command) and not undone by `undrain`: survives a restart of the agent. */
  drain: hashFlag.optional(),
  /** When the agent last stopped cleanly (ms); set with state `stopped`. */
  stoppedAt: z.coerce.number().int().optional(),
  /** When the peer was removed (ms); retention prunes its records this long after. */
  removedAt: z.coerce.number().int().optional(),
});
export type PeerRecord = z.infer<typeof peerRecordSchema>;

/** Parses a peer hash from HGETALL; null when the hash is empty (no such peer) or malformed. */
export function parsePeerRecord(hash: Record<string, string>): PeerRecord | null {
  if (Object.keys(hash).length === 0) return null;
  const parsed = peerRecordSchema.safeParse(hash);
  return parsed.success ? parsed.data : null;
}

/** Serialises a peer record for HSET (flags as '1'/'0', absent optional fields left out). */
export function peerRecordToHash(record: PeerRecord): Record<string, string> {
  return Object.fromEntries(
    Object.entries(record)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v)]),
  );
}

/**
 * A message on the `keys.peerEvents()` channel: something about a peer
 * changed (`left`: the agent stopped cleanly, state `stopped`; `removed`: an
 * operator took it out; `updated`: address, or drain undone). Subscribers re-read the peer record; the message is a hint, not the
 * state (a missed message is repaired by the subscriber's periodic refresh).
 */
export const peerEventSchema = z.object({
  type: z.enum(['joined', 'updated', 'draining', 'lost', 'left', 'removed']),
  peerId: z.string().min(1),
  address: z.string().optional(),
  at: z.number().int(),
});
export type PeerEvent = z.infer<typeof peerEventSchema>;
