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

const LUA_DIR = path.join(__dirname, '../../lua');
const SCRIPTS = {
  rpsAgentPeerRegister: loadLuaScript(LUA_DIR, 'peer-register'),
  rpsAgentPeerHeartbeat: loadLuaScript(LUA_DIR, 'peer-heartbeat'),
  rpsAgentPeerState: loadLuaScript(LUA_DIR, 'peer-agent-state'),
};

interface PeerScripts {
  rpsAgentPeerRegister(...args: Array<string | number>): Promise<[string, string, string]>;
  rpsAgentPeerHeartbeat(...args: Array<string | number>): Promise<[string, string]>;
  rpsAgentPeerState(...args: Array<string | number>): Promise<string>;
}

/** What the registration found and wrote. */
export interface RegisterResult {
  previousState: PeerState | '';
  /** The state written: `draining` when a drain survived the restart; null when the peer is removed (nothing written). */
  state: 'active' | 'draining' | null;
}

/** What the heartbeat found before it wrote. */
export interface HeartbeatResult {
  previousState: PeerState | '';
  previousAddress: string;
}

/** A state change of the agent's own (drain, undrain, clean stop). */
export type OwnStateChange =
  { state: 'draining' | 'active'; drain: boolean } | { state: 'stopped'; stoppedAt: number };

/** The peer's registration in Redis: record hash, `peers` zset and `peerEvents` channel. */
export class PeerStore {
  private readonly scripts: PeerScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {
    for (const [command, script] of Object.entries(SCRIPTS)) {
      if (!(command in redis)) redis.defineCommand(command, script);
    }
    this.scripts = redis as unknown as PeerScripts;
  }

  /** Writes the whole record (dropping stale fields, keeping a drain) and scores the peer, unless it is removed. */
  async register(record: PeerRecord): Promise<RegisterResult> {
    const full = Object.entries(peerRecordToHash(record)).flat();
    const [previous, , state] = await this.scripts.rpsAgentPeerRegister(
      this.keys.peer(record.id),
      this.keys.peers(),
      record.id,
      record.heartbeatAt,
      ...full,
    );
    return {
      previousState: previous as PeerState | '',
      state: state === 'active' || state === 'draining' ? state : null,
    };
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

  /**
   * Sets the agent's own state unless the record is gone or removed, and then
   * announces it. Returns the previous state ('' for no record).
   */
  async setOwnState(peerId: string, change: OwnStateChange, event: PeerEvent): Promise<PeerState | ''> {
    const [drain, field, at] =
      change.state === 'stopped' ? ['', 'stoppedAt', change.stoppedAt] : [change.drain ? '1' : '0', '', 0];
    const previous = (await this.scripts.rpsAgentPeerState(
      this.keys.peer(peerId),
      change.state,
      drain,
      field,
      at,
    )) as PeerState | '';
    if (previous !== '' && previous !== 'removed') await this.publish(event);
    return previous;
  }

  async publish(event: PeerEvent): Promise<void> {
    await this.redis.publish(this.keys.peerEvents(), JSON.stringify(event));
  }
}
