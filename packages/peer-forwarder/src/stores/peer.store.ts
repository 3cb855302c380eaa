import {
  parsePeerRecord,
  peerEventSchema,
  subscribeWhenReady,
  type PeerEvent,
  type PeerRecord,
  type RedisKeys,
} from '@rps/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** What the peer sync reads from the registry; an interface so the service stays free of ioredis. */
export interface PeerSource {
  /** Every registered peer with a parseable record. */
  readAll(): Promise<PeerRecord[]>;
  /** One peer's record; null when it is gone or malformed. */
  read(peerId: string): Promise<PeerRecord | null>;
  /**
   * Subscribes to peer events. `onResubscribed` runs whenever the subscription
   * is re-established after a connection loss, when messages may have been
   * missed. Resolves with an unsubscribe function.
   */
  subscribe(handlers: {
    onEvent: (event: PeerEvent) => void;
    onResubscribed: () => void;
  }): Promise<() => Promise<void>>;
}

/**
 * Reads the peer registry (`keys.peers()` index, `keys.peer(id)` hashes) with
 * a request-role connection and listens to `keys.peerEvents()` on a dedicated
 * subscriber connection (a subscribed ioredis client can run nothing else).
 */
export class PeerStore implements PeerSource {
  private readonly log: Logger;

  constructor(private readonly deps: { redis: Redis; subscriber: Redis; keys: RedisKeys; logger: Logger }) {
    this.log = deps.logger.child({ component: 'peer-store' });
  }

  async readAll(): Promise<PeerRecord[]> {
    const { redis, keys } = this.deps;
    const ids = await redis.zrange(keys.peers(), 0, -1);
    if (ids.length === 0) return [];
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hgetall(keys.peer(id));
    const results = (await pipeline.exec()) ?? [];
    const records: PeerRecord[] = [];
    results.forEach(([err, hash], i) => {
      if (err) throw err;
      const record = parsePeerRecord(hash as Record<string, string>);
      if (record) records.push(record);
      else if (Object.keys(hash as object).length > 0)
        this.log.warn({ peerId: ids[i] }, 'malformed peer record');
    });
    return records;
  }

  async read(peerId: string): Promise<PeerRecord | null> {
    const hash = await this.deps.redis.hgetall(this.deps.keys.peer(peerId));
    return parsePeerRecord(hash);
  }

  async subscribe(handlers: {
    onEvent: (event: PeerEvent) => void;
    onResubscribed: () => void;
  }): Promise<() => Promise<void>> {
    const { subscriber, keys } = this.deps;
    const channel = keys.peerEvents();
    const onMessage = (from: string, message: string) => {
      if (from !== channel) return;
      const parsed = parseEvent(message);
      if (parsed) handlers.onEvent(parsed);
      else this.log.warn({ message: message.slice(0, 200) }, 'invalid peer event ignored');
    };
    // ioredis re-subscribes by itself after a reconnect; messages published
    // while it was away are lost, so the caller re-reads everything. Attached
    // once subscribed, every later 'ready' is such a reconnect.
    const onReady = () => handlers.onResubscribed();
    subscriber.on('message', onMessage);
    await subscribeWhenReady(subscriber, channel);
    subscriber.on('ready', onReady);
    return async () => {
      subscriber.off('message', onMessage);
      subscriber.off('ready', onReady);
      if (subscriber.status === 'ready') await subscriber.unsubscribe(channel);
    };
  }
}

function parseEvent(message: string): PeerEvent | null {
  try {
    const parsed = peerEventSchema.safeParse(JSON.parse(message));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
