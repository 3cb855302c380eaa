import pino from 'pino';
import { Registry } from 'prom-client';
import type { PeerEvent } from '@rps/common';
import type { PeerEntry, PeerStore } from '../stores/peer.store';
import { gonePeerReason, LivenessService, peerIsGone } from './liveness.service';
import type { RunRecovery } from './run-recovery.service';
import { createSchedulerMetrics } from './scheduler.metrics';

// The pure decision of one liveness tick, with the stores replaced by fakes:
// which peers are marked lost, which are announced, whose runs are recovered.
function setup(
  peers: PeerEntry[],
  {
    publishFails = false,
    reachableSince = 0,
    recoveredCounts = { lost: 1, requeued: 0, cleared: 0 },
    /** The store's script found a fresh heartbeat: it marks nothing. */
    heartbeatArrived = false,
  } = {},
) {
  const published: PeerEvent[] = [];
  const recovered: string[] = [];
  const markCalls: Array<{ peerId: string; cutoff: number; now: number }> = [];
  const fakePeers = {
    list: async () => peers,
    markLostIfSilent: async (peerId: string, cutoff: number, now: number) => {
      markCalls.push({ peerId, cutoff, now });
      return heartbeatArrived ? null : peers.find((p) => p.id === peerId)!.heartbeatAt;
    },
    publish: async (event: PeerEvent) => {
      if (publishFails) throw new Error('redis down');
      published.push(event);
    },
  } as unknown as PeerStore;
  const recovery = {
    recoverPeer: async (peerId: string) => {
      recovered.push(peerId);
      return { ...recoveredCounts, skipped: 0 };
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

  it('when a peer last beat exactly at the cutoff then it is not lost yet, and one millisecond earlier it is', async () => {
    // now 10 000, timeout 1000: the cutoff is 9000; silence must be longer than the timeout.
    const { service, markCalls } = setup([peer('edge', 9000), peer('past', 8999)]);
    await expect(service.run(10_000)).resolves.toMatchObject({ markedLost: 1 });
    expect(markCalls.map((c) => c.peerId)).toEqual(['past']);
  });

  it('when Redis has been reachable for exactly a heartbeat timeout then losses are still held', async () => {
    const { service, markCalls } = setup([peer('quiet', 1000)], { reachableSince: 9000 });
    await expect(service.run(10_000)).resolves.toMatchObject({ markedLost: 0 });
    expect(markCalls).toEqual([]);
  });

  it('when the heartbeat arrives before the store marks the peer then it is neither announced nor recovered', async () => {
    const { service, published, recovered, markCalls } = setup([peer('late', 1000)], {
      heartbeatArrived: true,
    });
    await expect(service.run(10_000)).resolves.toMatchObject({ markedLost: 0, runsLost: 0 });
    expect(markCalls).toHaveLength(1);
    expect(published).toEqual([]);
    expect(recovered).toEqual([]);
  });

  it('when gone peers runs are recovered then the tick sums what each recovery did', async () => {
    const { service } = setup([peer('a', 1000, 'lost'), peer('b', 1000, 'stopped')], {
      recoveredCounts: { lost: 1, requeued: 2, cleared: 3 },
    });
    expect(await service.run(10_000)).toEqual({
      peers: 2,
      markedLost: 0,
      runsLost: 2,
      runsRequeued: 4,
      runsCleared: 6,
    });
  });
});

describe('gonePeerReason and peerIsGone', () => {
  // The reason is what IVIS-core shows for a run lost with its peer.
  it('when a peer is gone then the reason says how, and a silent one for how many seconds', () => {
    expect(gonePeerReason({ ...peer('p', 0), exists: false }, 10_000)).toBe(
      'peer p is gone (no registration)',
    );
    expect(gonePeerReason(peer('p', 0, 'removed'), 10_000)).toBe('peer p was removed');
    expect(gonePeerReason(peer('p', 0, 'stopped'), 10_000)).toBe('peer p stopped with the run unfinished');
    expect(gonePeerReason(peer('p', 1000, 'lost'), 10_400)).toBe('peer p lost: no heartbeat for 9 s');
  });

  it('when a peer is lost, removed, stopped or unregistered then it is gone, and active or draining it is not', () => {
    for (const state of ['lost', 'removed', 'stopped'])
      expect(peerIsGone({ exists: true, state })).toBe(true);
    for (const state of ['active', 'draining', '']) expect(peerIsGone({ exists: true, state })).toBe(false);
    expect(peerIsGone({ exists: false, state: 'active' })).toBe(true);
  });
});
