import type { Redis } from 'ioredis';
import { parsePeerRecord, type Logger, type RedisKeys } from '@rps/common';

/** Reads the peer registry (written by agents, scheduler-sync and remote-manager). */
export class PeerStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly logger: Logger,
  ) {}

  /**
   * Every registered peer that has not left for good, online or not (active,
   * draining, lost, and `stopped`: an agent shut down for maintenance or an
   * upgrade): their control streams are durable, so an offline peer still
   * gets the command when it returns. Only an operator's removal ends that. A peer id without a record is skipped (nothing would
   * ever read its stream); a malformed record is kept, since only `removed`
   * excludes a peer.
   */
  async listNotRemoved(): Promise<string[]> {
    const ids = await this.redis.zrange(this.keys.peers(), 0, -1);
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.peer(id));
    const results = (await pipeline.exec()) ?? [];
    const kept: string[] = [];
    ids.forEach((id, i) => {
      const [err, value] = results[i] ?? [new Error('missing pipeline result'), null];
      if (err) throw err;
      const hash = (value ?? {}) as Record<string, string>;
      if (Object.keys(hash).length === 0) return;
      const record = parsePeerRecord(hash);
      if (record === null) this.logger.warn({ peerId: id }, 'malformed peer record, sending anyway');
      const state = record?.state ?? hash.state;
      if (state !== 'removed') kept.push(id);
    });
    return kept;
  }
}
