import type { Logger } from 'pino';
import type { PeerEntry, PeerStore } from '../stores/peer.store';
import type { RedisOutages } from './redis-outages.service';
import type { RunRecovery } from './run-recovery.service';
import { PEER_GAUGE_STATES, setByState, type SchedulerMetrics } from './scheduler.metrics';

/** The counts one liveness tick logs. */
export interface LivenessSummary {
  peers: number;
  markedLost: number;
  runsLost: number;
  runsRequeued: number;
  runsCleared: number;
}

/** The reason text a lost run carries (IVIS shows it); names the peer. */
export function lostPeerReason(peerId: string, silentMs: number): string {
  return `peer ${peerId} lost: no heartbeat for ${Math.round(silentMs / 1000)} s`;
}

/** Why a gone peer's runs are recovered, by what is known about the peer. */
export function gonePeerReason(peer: PeerEntry, now: number): string {
  if (!peer.exists) return `peer ${peer.id} is gone (no registration)`;
  if (peer.state === 'removed') return `peer ${peer.id} was removed`;
  if (peer.state === 'stopped') return `peer ${peer.id} stopped with the run unfinished`;
  return lostPeerReason(peer.id, now - peer.heartbeatAt);
}

/** Peers whose agent is not running: their runs are recovered. A stopped peer is silent on purpose, never lost. */
export function peerIsGone(peer: Pick<PeerEntry, 'exists' | 'state'>): boolean {
  return !peer.exists || peer.state === 'lost' || peer.state === 'removed' || peer.state === 'stopped';
}

/**
 * Peer liveness: a peer silent for longer than the heartbeat timeout is
 * marked lost (and announced on the peer events channel), unless it stopped
 * cleanly (state `stopped`), and the runs of every lost, stopped, removed or
 * vanished peer are recovered (a clean stop leaves none, unless its runs
 * outlived the agent's shutdown wait). Recovery runs on every
 * tick for every such peer, not just when it is marked, so a scheduler that
 * died half-way through a peer is repaired by the next tick. A lost peer that
 * returns re-registers itself as active; its runs that were already reported
 * lost stay lost (the state machine refuses any event but resubmit).
 * Time in which Redis itself was unreachable does not count as silence (see
 * {@link RedisOutages}): no peer is marked lost until Redis has been
 * reachable for a whole heartbeat timeout.
 */
export class LivenessService {
  private readonly log: Logger;

  constructor(
    private readonly deps: {
      peers: PeerStore;
      recovery: RunRecovery;
      metrics: SchedulerMetrics;
      outages: Pick<RedisOutages, 'since'>;
      heartbeatTimeoutMs: number;
      logger: Logger;
    },
  ) {
    this.log = deps.logger.child({ component: 'liveness' });
  }

  async run(now = Date.now()): Promise<LivenessSummary> {
    const summary: LivenessSummary = {
      peers: 0,
      markedLost: 0,
      runsLost: 0,
      runsRequeued: 0,
      runsCleared: 0,
    };
    const cutoff = now - this.deps.heartbeatTimeoutMs;
    const holdLosses = await this.redisRecentlyUnreachable(cutoff);
    const byState = new Map<string, number>();
    for (const peer of await this.deps.peers.list()) {
      summary.peers++;
      let state = peer.state;
      if (!holdLosses && peer.exists && !peerIsGone(peer) && peer.heartbeatAt < cutoff) {
        if (await this.markLost(peer, cutoff, now)) {
          state = 'lost';
          summary.markedLost++;
        }
      }
      byState.set(state, (byState.get(state) ?? 0) + 1);
      if (!peerIsGone({ exists: peer.exists, state })) continue;
      const counts = await this.deps.recovery.recoverPeer(
        peer.id,
        gonePeerReason({ ...peer, state }, now),
        now,
      );
      summary.runsLost += counts.lost;
      summary.runsRequeued += counts.requeued;
      summary.runsCleared += counts.cleared;
    }
    setByState(this.deps.metrics.peers, byState, PEER_GAUGE_STATES);
    return summary;
  }

  /** True while Redis has been reachable for less than a heartbeat timeout: silence proves nothing yet. */
  private async redisRecentlyUnreachable(cutoff: number): Promise<boolean> {
    const since = await this.deps.outages.since();
    if (since < cutoff) return false;
    this.log.info(
      { reachableSince: since },
      'redis was unreachable within the heartbeat timeout: no peer marked lost',
    );
    return true;
  }

  private async markLost(peer: PeerEntry, cutoff: number, now: number): Promise<boolean> {
    const lastHeartbeat = await this.deps.peers.markLostIfSilent(peer.id, cutoff, now);
    if (lastHeartbeat === null) return false;
    this.log.warn({ peerId: peer.id, silentMs: now - lastHeartbeat }, 'peer lost');
    // The event is a hint to subscribers; failing to send it must not keep the
    // peer's runs from being recovered in this tick.
    await this.deps.peers
      .publish({ type: 'lost', peerId: peer.id, address: peer.record?.address, at: now })
      .catch((err: unknown) => this.log.warn({ err, peerId: peer.id }, 'lost event not published'));
    return true;
  }
}
