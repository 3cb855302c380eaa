import path from 'node:path';
import type { Redis } from 'ioredis';
import { parsePeerRecord, type PeerEvent, type PeerRecord } from '../contracts/peer.contract';
import { CONTROL_STREAM_MAXLEN, type ControlCommand } from '../contracts/run.contract';
import type { RedisKeys } from '../redis/keys';
import { loadLuaScript } from '../redis/lua';

const LUA_DIR = path.join(__dirname, '../../lua');
const REMOVE = loadLuaScript(LUA_DIR, 'peer-remove');
const PRUNE = loadLuaScript(LUA_DIR, 'peer-prune');

/** The stream field that carries a command's JSON (the agent reads this name; the gateway writes it too). */
const COMMAND_FIELD = 'command';

interface AdminScripts {
  rpsPeerRemove(...args: Array<string | number>): Promise<string>;
  rpsPeerPrune(...args: Array<string | number>): Promise<number>;
}

/** One peer of the registry as an operator sees it. */
export interface PeerListing {
  id: string;
  /** Last heartbeat (ms), the `peers` score. */
  heartbeatAt: number;
  /** The parsed record; null when the hash is gone or malformed. */
  record: PeerRecord | null;
  /** The raw `state` field ('' without a record), also for records this version cannot parse. */
  state: string;
}

/** What {@link PeerAdmin.remove} did. */
export type RemoveOutcome = 'removed' | 'already-removed' | 'unknown';

/**
 * The operator's side of the peer registry, shared by the `rps-peer` script,
 * scheduler-sync's retention and (later) remote-manager: list peers, remove a
 * peer for good, prune a removed peer's records, and put a command on a
 * peer's control stream. Removal is the only way into state `removed`; the
 * agent never sets it.
 */
export class PeerAdmin {
  private readonly scripts: AdminScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {
    for (const [command, script] of [
      ['rpsPeerRemove', REMOVE],
      ['rpsPeerPrune', PRUNE],
    ] as const) {
      if (!(command in redis)) redis.defineCommand(command, script);
    }
    this.scripts = redis as unknown as AdminScripts;
  }

  /** Every member of `keys.peers()` with its record (stopped and removed peers included). */
  async list(): Promise<PeerListing[]> {
    const flat = await this.redis.zrange(this.keys.peers(), 0, -1, 'WITHSCORES');
    const out: PeerListing[] = [];
    if (flat.length === 0) return out;
    const pipeline = this.redis.pipeline();
    for (let i = 0; i < flat.length; i += 2) pipeline.hgetall(this.keys.peer(flat[i] ?? ''));
    const results = (await pipeline.exec()) ?? [];
    results.forEach(([err, value], j) => {
      if (err) throw err;
      const hash = (value ?? {}) as Record<string, string>;
      const id = flat[j * 2] ?? '';
      out.push({
        id,
        heartbeatAt: Number(flat[j * 2 + 1]),
        record: parsePeerRecord(hash),
        state: hash.state ?? '',
      });
    });
    return out;
  }

  /**
   * Takes a peer out of the pool for good (state `removed`, `removedAt`) and
   * announces it: no more commands are addressed to it, the forwarder refuses
   * its address, its runs are recovered by liveness and its records are
   * pruned after `scheduler.retentionMs`. Its agent, if running, takes no more
   * runs and cannot register again until the records are pruned.
   */
  async remove(peerId: string, now = Date.now()): Promise<RemoveOutcome> {
    const previous = await this.scripts.rpsPeerRemove(this.keys.peer(peerId), this.keys.peers(), peerId, now);
    if (previous === '') return 'unknown';
    if (previous === 'removed') return 'already-removed';
    const event: PeerEvent = { type: 'removed', peerId, at: now };
    await this.redis.publish(this.keys.peerEvents(), JSON.stringify(event));
    return 'removed';
  }

  /**
   * Deletes every record of a removed peer whose `removedAt` is at or before
   * `cutoff` (ms): hash, `peers` member, runs set, control stream, sync
   * probe, address history. False when the peer is not removed or too recent.
   */
  async prune(peerId: string, cutoff: number): Promise<boolean> {
    const k = this.keys;
    const pruned = await this.scripts.rpsPeerPrune(
      k.peer(peerId),
      k.peers(),
      k.peerRuns(peerId),
      k.peerControl(peerId),
      k.peerSync(peerId),
      k.peerAddressHistory(peerId),
      peerId,
      cutoff,
    );
    return pruned === 1;
  }

  /** Appends a command to a peer's durable control stream (as the gateway does). */
  async send(peerId: string, command: ControlCommand): Promise<void> {
    await this.redis.xadd(
      this.keys.peerControl(peerId),
      'MAXLEN',
      '~',
      CONTROL_STREAM_MAXLEN,
      '*',
      COMMAND_FIELD,
      JSON.stringify(command),
    );
  }
}
