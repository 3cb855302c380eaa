import type { PeerRecord } from '@rps/common';
import { addressKey, CidrMatcher } from './cidr.matcher';

/** Why a source got through, or that it did not. */
export type AccessDecision =
  | { allowed: true; via: 'peer'; peerId: string }
  | { allowed: true; via: 'allow'; cidr: string }
  | { allowed: false };

/** The peer fields the allow-list needs. */
export type AllowedPeer = Pick<PeerRecord, 'id' | 'address' | 'state'>;

/**
 * Which peer states may forward: a lost peer may still be finishing pushes
 * (it is only silent to the RPS), a draining one finishes its runs; a
 * stopped peer's agent is not running (whatever uses its address now is not
 * the agent) and a removed one is out for good.
 */
export function peerMayForward(peer: AllowedPeer): boolean {
  return peer.state !== 'removed' && peer.state !== 'stopped';
}

/**
 * Who may use the forwarder: registered peers that are neither stopped nor removed, by address, plus
 * the configured `forwarder.allow` ranges. Kept in memory and checked on every
 * request (not per connection), so a peer removed while its keep-alive
 * connection stays open is refused on its next request.
 */
export class AccessList {
  private readonly cidrs: CidrMatcher;
  private readonly peers = new Map<string, bigint>();
  private byAddress = new Map<bigint, string>();

  constructor(allow: readonly string[]) {
    this.cidrs = new CidrMatcher(allow);
  }

  /** Number of peers currently allowed. */
  get size(): number {
    return this.peers.size;
  }

  /** Replaces the whole peer set (full refresh); returns ids whose records had an unusable address. */
  replaceAll(peers: readonly AllowedPeer[]): string[] {
    this.peers.clear();
    const bad: string[] = [];
    for (const peer of peers) if (!this.put(peer)) bad.push(peer.id);
    this.reindex();
    return bad;
  }

  /** Applies one peer's current record (null: the record is gone); false when its address is unusable. */
  apply(peerId: string, peer: AllowedPeer | null): boolean {
    this.peers.delete(peerId);
    const ok = peer === null || this.put(peer);
    this.reindex();
    return ok;
  }

  /** The ids of the peers currently allowed. */
  peerIds(): string[] {
    return [...this.peers.keys()];
  }

  /** Decides for a source address as the socket reports it. */
  check(remoteAddress: string | undefined): AccessDecision {
    return this.checkKey(remoteAddress === undefined ? null : addressKey(remoteAddress));
  }

  /** Decides for an address already parsed with addressKey (the relay parses a connection's address once). */
  checkKey(key: bigint | null): AccessDecision {
    if (key === null) return { allowed: false };
    const peerId = this.byAddress.get(key);
    if (peerId !== undefined) return { allowed: true, via: 'peer', peerId };
    const cidr = this.cidrs.match(key);
    return cidr ? { allowed: true, via: 'allow', cidr: cidr.text } : { allowed: false };
  }

  private put(peer: AllowedPeer): boolean {
    if (!peerMayForward(peer)) return true;
    const key = addressKey(peer.address);
    if (key === null) return false;
    this.peers.set(peer.id, key);
    return true;
  }

  private reindex(): void {
    // Rebuilt on change rather than patched: two peers may share an address
    // (NAT, local development), and removing one must not unlist the other.
    const index = new Map<bigint, string>();
    for (const [id, key] of [...this.peers].sort(([a], [b]) => a.localeCompare(b))) {
      if (!index.has(key)) index.set(key, id);
    }
    this.byAddress = index;
  }
}
