import {
  controlAckSchema,
  PeerAdmin,
  runRecordSchema,
  type ControlAck,
  type RedisKeys,
  type RunRecord,
} from '@rps/common';
import type { Redis } from 'ioredis';

/** One peer with the count of runs it holds. */
export interface PeerView {
  id: string;
  heartbeatAt: number;
  state: string;
  address: string | null;
  capacity: number | null;
  executor: string | null;
  version: string | null;
  drain: boolean;
  running: number;
}

/** A run record with its output tail. */
export interface RunView {
  record: RunRecord;
  outputTail: string;
}

/**
 * Read access to what the other services write: peers (through common's
 * PeerAdmin, which also sends drain/undrain), runs and their output.
 */
export class PoolViewStore {
  readonly peerAdmin: PeerAdmin;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {
    this.peerAdmin = new PeerAdmin(redis, keys);
  }

  async peers(): Promise<PeerView[]> {
    const listing = await this.peerAdmin.list();
    if (listing.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const peer of listing) pipeline.scard(this.keys.peerRuns(peer.id));
    const counts = (await pipeline.exec()) ?? [];
    return listing.map((peer, i) => {
      const r = peer.record;
      return {
        id: peer.id,
        heartbeatAt: peer.heartbeatAt,
        state: peer.state,
        address: r?.address ?? null,
        capacity: r?.capacity ?? null,
        executor: r?.executor ?? null,
        version: r?.version ?? null,
        drain: r?.drain ?? false,
        running: Number(counts[i]?.[1] ?? 0),
      };
    });
  }

  async peer(id: string): Promise<PeerView | null> {
    return (await this.peers()).find((p) => p.id === id) ?? null;
  }

  /** How many runs a peer holds. */
  async peerRunCount(id: string): Promise<number> {
    return this.redis.scard(this.keys.peerRuns(id));
  }

  /** The newest runs (by last change), optionally only those in `state`; reads at most `scan` records. */
  async runs(options: { state?: string | undefined; limit: number; scan?: number }): Promise<RunRecord[]> {
    const scan = options.state ? (options.scan ?? 5000) : options.limit;
    const ids = await this.redis.zrevrange(this.keys.runIndex(), 0, scan - 1);
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.run(Number(id)));
    const results = (await pipeline.exec()) ?? [];
    const out: RunRecord[] = [];
    for (const [err, value] of results) {
      if (err) throw err;
      const parsed = runRecordSchema.safeParse(value);
      if (!parsed.success) continue;
      if (options.state && parsed.data.state !== options.state) continue;
      out.push(parsed.data);
      if (out.length >= options.limit) break;
    }
    return out;
  }

  /** One run with the last `tailBytes` of its output; null when unknown. */
  async run(runId: number, tailBytes: number): Promise<RunView | null> {
    const [hash, tail] = await Promise.all([
      this.redis.hgetall(this.keys.run(runId)),
      this.redis.getrange(this.keys.runOutput(runId), -tailBytes, -1),
    ]);
    if (Object.keys(hash).length === 0) return null;
    const parsed = runRecordSchema.safeParse(hash);
    return parsed.success ? { record: parsed.data, outputTail: tail } : null;
  }

  /** A control command's acknowledgement if the agent gave one (LPOP, non-blocking); malformed ones count as none. */
  async popAck(commandId: string): Promise<ControlAck | null> {
    const text = await this.redis.lpop(this.keys.controlAck(commandId));
    if (text === null) return null;
    try {
      const parsed = controlAckSchema.safeParse(JSON.parse(text));
      return parsed.success ? parsed.data : null;
    } catch {
      return null;
    }
  }
}
