import pino from 'pino';
import { Registry } from 'prom-client';
import type { PeerEvent } from '@rps/common';
import type { PeerEntry, PeerStore } from '../stores/peer.store';
import { LivenessService } from './liveness.service';
import type { RunRecovery } from './run-recovery.service';
import { createSchedulerMetrics } from './scheduler.metrics';

// The pure decision of one liveness tick, with the stores replaced by fakes:
// which peers are marked lost, which are announced, whose runs are recovered.
function setup(peers: PeerEntry[], { publishFails = false, reachableSince = 0 } = {}) {
  const published: PeerEvent[] = [];
  const recovered: string[] = [];
  const markCalls: Array<{ peerId: string; cutoff: number; now: number }> = [];
  const fakePeers = {
    list: async () => peers,
    markLostIfSilent: async (peerId: string, cutoff: number, now: number) => {
      markCalls.push({ peerId, cutoff, now });
      return peers.find((p) => p.id === peerId)!.heartbeatAt;
    },
    publish: async (event: PeerEvent) => {
      if (publishFails) throw new Error('redis down');
      published.push(event);
    },
  } as unknown as PeerStore;
  const recovery = {
    recoverPeer: async (peerId: string) => {
      recovered.push(peerId);
      return { lost: 1, requeued: 0, cleared: 0, skipped: 0 };
    },
  } as unknown as RunRecovery;
  const service = new LivenessService({
    peers: fakePeers,
    recovery,
    metrics: createSchedulerMetrics(new Registry()),
    outages: { since: async () => reachableSince },
    heartbeatTimeoutMs: 1000,
    logger: pino({ level: 'silent' }),
  });
  return { service, published, recovered, markCalls };
}

const peer = (id: string, heartbeatAt: number, state = 'active'): PeerEntry => ({
  id,
  exists: true,
  state,
  heartbeatAt,
  record: null,
});

describe('LivenessService', () => {
  it('when one peer is silent past the timeout then only it is marked, announced and recovered', async () => {
    const { service, published, recovered } = setup([peer('quiet', 1000), peer('alive', 9500)]);
    const summary = await service.run(10_000);
    expect(summary).toMatchObject({ peers: 2, markedLost: 1, runsLost: 1 });
    expect(published).toEqual([{ type: 'lost', peerId: 'quiet', at: 10_000 }]);
    expect(recovered).toEqual(['quiet']);
  });

  it('when a peer is already lost then it is not announced again but its runs are still recovered', async () => {
    const { service, published, recovered } = setup([peer('gone', 1000, 'lost')]);
    await service.run(10_000);
    expect(published).toEqual([]);
    expect(recovered).toEqual(['gone']);
  });

  it('when the event cannot be published then the runs are recovered anyway', async () => {
    const { service, recovered } = setup([peer('quiet', 1000)], { publishFails: true });
    await expect(service.run(10_000)).resolves.toMatchObject({ markedLost: 1 });
    expect(recovered).toEqual(['quiet']);
  });

  it('when a peer is silent then the store is asked to mark it with exactly now minus the heartbeat timeout', async () => {
    // The script re-checks the heartbeat against this cutoff: a wrong one
    // (say, twice the timeout) would change who is lost, so it is pinned.
    const { service, markCalls } = setup([peer('quiet', 8000), peer('alive', 9500)]);
    await service.run(10_000);
    expect(markCalls).toEqual([{ peerId: 'quiet', cutoff: 9000, now: 10_000 }]);
  });

  it('when Redis was unreachable within the heartbeat timeout then no peer is marked lost, and afterwards they are', async () => {
    // Redis came back at 9200: a heartbeat timeout (1000) has not passed since.
    const held = setup([peer('quiet', 1000)], { reachableSince: 9200 });
    await expect(held.service.run(10_000)).resolves.toMatchObject({ markedLost: 0 });
    expect(held.markCalls).toEqual([]);
    expect(held.recovered).toEqual([]);
    // Back at 8999: a whole timeout of reachable Redis and still no heartbeat.
    const marked = setup([peer('quiet', 1000)], { reachableSince: 8999 });
    await expect(marked.service.run(10_000)).resolves.toMatchObject({ markedLost: 1 });
  });

  it('when a peer was already lost before the outage then its runs are still recovered while losses are held', async () => {
    const { service, recovered } = setup([peer('gone', 1000, 'lost')], { reachableSince: 9900 });
    await service.run(10_000);
    expect(recovered).toEqual(['gone']);
  });
});
