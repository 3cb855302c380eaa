import path from 'node:path';
import {
  loadLuaScript,
  parsePeerRecord,
  parseRunId,
  peerEventSchema,
  type PeerEvent,
  type PeerRecord,
  type RedisKeys,
} from '@rps/common';
import type { Redis } from 'ioredis';

const LUA_DIR = path.join(__dirname, '../../lua');
const MARK_LOST = loadLuaScript(LUA_DIR, 'peer-mark-lost');

interface PeerScripts {
  rpsPeerMarkLost(...args: Array<string | number>): Promise<string>;
}

/**
 * A peer as the scheduler sees it. `state` comes from the raw hash so that a
 * record a newer agent wrote (one this version cannot parse) still counts as
 * alive; `exists` is false when the zset names a peer whose hash is gone.
 */
export interface PeerEntry {
  id: string;
  exists: boolean;
  state: string;
  /** Last heartbeat (ms) from `keys.peers()`. */
  heartbeatAt: number;
  /** The parsed record, or null when it is missing or malformed. */
  record: PeerRecord | null;
}

/** One probe of a peer's admin endpoint (the sync round), as stored. */
export interface PeerSyncResult {
  ok: boolean;
  /** HTTP status, 0 when there was no answer. */
  status: number;
  version: string;
  rttMs: number;
  at: number;
  error: string;
  /** Heartbeats arrive but the admin endpoint does not answer. */
  halfDead: boolean;
}

/** The peer registry as scheduler-sync reads and changes it. */
export class PeerStore {
  private readonly scripts: PeerScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {
    const command = 'rpsPeerMarkLost';
    if (!(command in redis)) redis.defineCommand(command, MARK_LOST);
    this.scripts = redis as unknown as PeerScripts;
  }

  /** Every peer in the heartbeat index with its hash, in one round trip per 200 peers. */
  async list(): Promise<PeerEntry[]> {
    const flat = await this.redis.zrange(this.keys.peers(), 0, -1, 'WITHSCORES');
    const ids: Array<[string, number]> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) ids.push([flat[i] ?? '', Number(flat[i + 1])]);
    const out: PeerEntry[] = [];
    for (let i = 0; i < ids.length; i += 200) {
      const chunk = ids.slice(i, i + 200);
      const pipeline = this.redis.pipeline();
      for (const [id] of chunk) pipeline.hgetall(this.keys.peer(id));
      const results = (await pipeline.exec()) ?? [];
      chunk.forEach(([id, heartbeatAt], j) => {
        const [err, value] = results[j] ?? [null, {}];
        if (err) throw err;
        const hash = (value ?? {}) as Record<string, string>;
        const exists = Object.keys(hash).length > 0;
        out.push({ id, exists, state: hash.state ?? '', heartbeatAt, record: parsePeerRecord(hash) });
      });
    }
    return out;
  }

  /**
   * Marks the peer lost if its heartbeat is still older than `cutoff`.
   * Returns the last heartbeat (ms) when this call marked it, else null.
   */
  async markLostIfSilent(peerId: string, cutoff: number, now: number): Promise<number | null> {
    const result = await this.scripts.rpsPeerMarkLost(
      this.keys.peer(peerId),
      this.keys.peers(),
      peerId,
      String(cutoff),
      String(now),
    );
    return result === '' ? null : Number(result);
  }

  async publish(event: PeerEvent): Promise<void> {
    await this.redis.publish(this.keys.peerEvents(), JSON.stringify(peerEventSchema.parse(event)));
  }

  /**
   * Run ids in the peer's runs set, read as the gateway reads a URL's
   * ({@link parseRunId}: canonical decimals only, as agents write them).
   * `Number` alone would read `''` as run 0 and `'07'` or `'1e3'` as other
   * runs, which a recovery must never touch.
   */
  async runsOf(peerId: string): Promise<number[]> {
    const members = await this.redis.smembers(this.keys.peerRuns(peerId));
    return members.map(parseRunId).filter((id): id is number => id !== null);
  }

  /** Drops a stale member (the run ended, moved or was deleted). */
  async forgetRun(peerId: string, runId: number): Promise<void> {
    await this.redis.srem(this.keys.peerRuns(peerId), String(runId));
  }

  async writeSync(peerId: string, result: PeerSyncResult): Promise<void> {
    await this.redis.hset(this.keys.peerSync(peerId), {
      ok: result.ok ? '1' : '0',
      status: String(result.status),
      version: result.version,
      rttMs: String(result.rttMs),
      at: String(result.at),
      error: result.error,
      halfDead: result.halfDead ? '1' : '0',
    });
  }

  async readSync(peerId: string): Promise<PeerSyncResult | null> {
    const hash = await this.redis.hgetall(this.keys.peerSync(peerId));
    if (Object.keys(hash).length === 0) return null;
    return {
      ok: hash.ok === '1',
      status: Number(hash.status ?? 0),
      version: hash.version ?? '',
      rttMs: Number(hash.rttMs ?? 0),
      at: Number(hash.at ?? 0),
      error: hash.error ?? '',
      halfDead: hash.halfDead === '1',
    };
  }
}
