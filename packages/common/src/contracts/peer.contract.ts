import { z } from 'zod';

/**
 * Peer registration, as stored in the hash at `keys.peer(peerId)` (all values
 * strings in Redis; parse with {@link parsePeerRecord}). Written by the
 * peer-agent on register and heartbeat, by scheduler-sync (state `lost`) and by
 * remote-manager (state `removed`). Producers and consumers are separate
 * deployables, so readers validate (STYLE.md rule 4).
 */
export const PEER_STATES = ['active', 'draining', 'lost', 'removed'] as const;
/** `active` takes runs; `draining` finishes its runs but takes no new ones; `lost` missed its heartbeat; `removed` left for good (deregistered or removed by an operator). */
export type PeerState = (typeof PEER_STATES)[number];

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
});
export type PeerRecord = z.infer<typeof peerRecordSchema>;

/** Parses a peer hash from HGETALL; null when the hash is empty (no such peer) or malformed. */
export function parsePeerRecord(hash: Record<string, string>): PeerRecord | null {
  if (Object.keys(hash).length === 0) return null;
  const parsed = peerRecordSchema.safeParse(hash);
  return parsed.success ? parsed.data : null;
}

/** Serialises a peer record for HSET. */
export function peerRecordToHash(record: PeerRecord): Record<string, string> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, String(v)]));
}

/**
 * A message on the `keys.peerEvents()` channel: something about a peer
 * changed. Subscribers re-read the peer record; the message is a hint, not the
 * state (a missed message is repaired by the subscriber's periodic refresh).
 */
export const peerEventSchema = z.object({
  type: z.enum(['joined', 'updated', 'draining', 'lost', 'left', 'removed']),
  peerId: z.string().min(1),
  address: z.string().optional(),
  at: z.number().int(),
});
export type PeerEvent = z.infer<typeof peerEventSchema>;
