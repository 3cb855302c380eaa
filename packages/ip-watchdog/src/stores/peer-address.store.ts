import path from 'node:path';
import {
  loadLuaScript,
  peerEventSchema,
  subscribeWhenReady,
  type PeerEvent,
  type RedisKeys,
} from '@rps/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';

const PEER_ADDRESS_RECORD = loadLuaScript(path.join(__dirname, '../../lua'), 'peer-address-record');

interface PeerAddressScripts {
  rpsPeerAddressRecord(...args: Array<string | number>): Promise<string | null>;
}

/** One entry of a peer's address history. */
export const peerAddressChangeSchema = z.object({
  address: z.string(),
  previous: z.string().nullable(),
  at: z.number().int(),
});
export type PeerAddressChange = z.infer<typeof peerAddressChangeSchema>;

/** What the watchdog needs of a peer record. */
export interface PeerAddress {
  peerId: string;
  address: string;
  state: string;
}

/** The peers' reported addresses and their recorded history. */
export class PeerAddressStore {
  private readonly scripts: PeerAddressScripts;

  constructor(
    private readonly deps: {
      redis: Redis;
      subscriber: Redis;
      keys: RedisKeys;
      historyCap: number;
      logger: Logger;
    },
  ) {
    const { redis } = deps;
    if (!('rpsPeerAddressRecord' in redis)) redis.defineCommand('rpsPeerAddressRecord', PEER_ADDRESS_RECORD);
    this.scripts = redis as unknown as PeerAddressScripts;
  }

  /** Address and state of every peer in the heartbeat index that has a record. */
  async readAll(): Promise<PeerAddress[]> {
    const { redis, keys } = this.deps;
    const ids = await redis.zrange(keys.peers(), 0, -1);
    if (ids.length === 0) return [];
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hmget(keys.peer(id), 'address', 'state');
    const results = (await pipeline.exec()) ?? [];
    return ids.flatMap((peerId, i) => {
      const [err, value] = results[i] ?? [null, []];
      if (err) throw err;
      const [address, state] = (value ?? []) as Array<string | null>;
      return address ? [{ peerId, address, state: state ?? '' }] : [];
    });
  }

  async read(peerId: string): Promise<PeerAddress | null> {
    const [address, state] = await this.deps.redis.hmget(this.deps.keys.peer(peerId), 'address', 'state');
    return address ? { peerId, address, state: state ?? '' } : null;
  }

  /** Appends the address if it differs from the last recorded one; returns the previous ('' first time) or null. */
  async recordAddress(peerId: string, address: string, now: number): Promise<string | null> {
    return this.scripts.rpsPeerAddressRecord(
      this.deps.keys.peerAddressHistory(peerId),
      address,
      String(now),
      String(this.deps.historyCap),
    );
  }

  async history(peerId: string): Promise<PeerAddressChange[]> {
    const raw = await this.deps.redis.lrange(this.deps.keys.peerAddressHistory(peerId), 0, -1);
    return raw.flatMap((line) => {
      const parsed = peerAddressChangeSchema.safeParse(parseJson(line));
      return parsed.success ? [parsed.data] : [];
    });
  }

  async publish(event: PeerEvent): Promise<void> {
    await this.deps.redis.publish(this.deps.keys.peerEvents(), JSON.stringify(peerEventSchema.parse(event)));
  }

  /** Subscribes to peer events on the dedicated subscriber connection; resolves with an unsubscribe. */
  async subscribe(onEvent: (event: PeerEvent) => void): Promise<() => Promise<void>> {
    const { subscriber, keys, logger } = this.deps;
    const channel = keys.peerEvents();
    const listener = (from: string, message: string) => {
      if (from !== channel) return;
      const parsed = peerEventSchema.safeParse(parseJson(message));
      if (parsed.success) onEvent(parsed.data);
      else logger.warn({ channel }, 'malformed peer event ignored');
    };
    subscriber.on('message', listener);
    await subscribeWhenReady(subscriber, channel);
    return async () => {
      subscriber.off('message', listener);
      await subscriber.unsubscribe(channel);
    };
  }
}

/** JSON.parse that answers undefined for malformed text (an entry another version wrote). */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
