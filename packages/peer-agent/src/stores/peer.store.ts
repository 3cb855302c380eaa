import path from 'node:path';
import type { Redis } from 'ioredis';
import {
  loadLuaScript,
  peerRecordToHash,
  type PeerEvent,
  type PeerRecord,
  type PeerState,
  type RedisKeys,
} from '@rps/common';

const HEARTBEAT = loadLuaScript(path.join(__dirname, '../../lua'), 'peer-heartbeat');

interface PeerScripts {
  rpsAgentPeerHeartbeat(...args: Array<string | number>): Promise<[string, string]>;
}

/** What the heartbeat found before it wrote. */
export interface HeartbeatResult {
  previousState: PeerState | '';
  previousAddress: string;
}

/** The peer's registration in Redis: record hash, `peers` zset and `peerEvents` channel. */
export class PeerStore {
  private readonly scripts: PeerScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {
    if (!('rpsAgentPeerHeartbeat' in redis)) redis.defineCommand('rpsAgentPeerHeartbeat', HEARTBEAT);
    this.scripts = redis as unknown as PeerScripts;
  }

  /** Writes the whole record (dropping stale fields), scores the peer and announces it. */
  async register(record: PeerRecord, event: PeerEvent): Promise<void> {
    await this.redis
      .multi()
      .del(this.keys.peer(record.id))
      .hset(this.keys.peer(record.id), peerRecordToHash(record))
      .zadd(this.keys.peers(), record.heartbeatAt, record.id)
      .publish(this.keys.peerEvents(), JSON.stringify(event))
      .exec();
  }

  async heartbeat(record: PeerRecord): Promise<HeartbeatResult> {
    const full = Object.entries(peerRecordToHash(record)).flat();
    const [state, address] = await this.scripts.rpsAgentPeerHeartbeat(
      this.keys.peer(record.id),
      this.keys.peers(),
      record.id,
      record.heartbeatAt,
      record.address,
      record.state,
      ...full,
    );
    return { previousState: state as PeerState | '', previousAddress: address };
  }

  /** Sets the record's state (draining, removed) and announces it. */
  async setState(peerId: string, state: PeerState, event: PeerEvent): Promise<void> {
    const tx = this.redis.multi().hset(this.keys.peer(peerId), 'state', state, 'heartbeatAt', event.at);
    // A removed peer has no heartbeat score: liveness and the forwarder stop considering it.
    if (state === 'removed') tx.zrem(this.keys.peers(), peerId);
    await tx.publish(this.keys.peerEvents(), JSON.stringify(event)).exec();
  }

  async publish(event: PeerEvent): Promise<void> {
    await this.redis.publish(this.keys.peerEvents(), JSON.stringify(event));
  }
}
