import type { Logger } from 'pino';
import type { PeerAddress, PeerAddressStore } from '../stores/peer-address.store';
import type { WatchdogMetrics } from './watchdog.metrics';

/** The counts one full pass logs. */
export interface PeerPassSummary {
  peers: number;
  changed: number;
}

/**
 * Follows the addresses peers report (agents write `address` on register and
 * heartbeat): each change is appended to the peer's address history and
 * announced as a peer `updated` event, on which the forwarder re-reads the
 * peer and moves its allow-list entry. Peer events trigger an immediate look
 * at that peer; a periodic full pass catches changes nobody announced. The
 * first sighting of a peer is recorded but not announced (nothing moved).
 */
export class PeerAddressService {
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  private pass: Promise<PeerPassSummary> | undefined;
  private readonly pending = new Set<Promise<void>>();
  private stopped = false;

  constructor(
    private readonly deps: {
      store: PeerAddressStore;
      metrics: WatchdogMetrics;
      pollMs: number;
      logger: Logger;
    },
  ) {
    this.log = deps.logger.child({ component: 'peer-addresses' });
  }

  async start(): Promise<void> {
    try {
      this.unsubscribe = await this.deps.store.subscribe((event) => {
        if (event.type === 'joined' || event.type === 'updated') this.track(this.checkOne(event.peerId));
      });
    } catch (err) {
      // The periodic pass still follows the addresses, only later.
      this.log.warn({ err: { message: (err as Error).message } }, 'peer event subscription failed');
    }
    const loop = async () => {
      await this.checkAll();
      if (!this.stopped) this.timer = setTimeout(() => void loop(), this.deps.pollMs);
    };
    await loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.unsubscribe?.().catch(() => undefined);
    await this.pass;
    await Promise.all(this.pending);
  }

  /** One pass over every peer; concurrent callers share it; never throws. */
  checkAll(): Promise<PeerPassSummary> {
    this.pass ??= this.runPass().finally(() => {
      this.pass = undefined;
    });
    return this.pass;
  }

  private async runPass(): Promise<PeerPassSummary> {
    const summary: PeerPassSummary = { peers: 0, changed: 0 };
    try {
      for (const peer of await this.deps.store.readAll()) {
        summary.peers++;
        if (await this.record(peer)) summary.changed++;
      }
    } catch (err) {
      this.log.warn({ err: { message: (err as Error).message } }, 'peer address pass failed');
    }
    return summary;
  }

  private async checkOne(peerId: string): Promise<void> {
    try {
      const peer = await this.deps.store.read(peerId);
      if (peer) await this.record(peer);
    } catch (err) {
      this.log.warn({ peerId, err: { message: (err as Error).message } }, 'peer address check failed');
    }
  }

  /** Records the peer's address; true when it changed from a previously recorded one (and was announced). */
  private async record(peer: PeerAddress): Promise<boolean> {
    if (peer.state === 'removed') return false;
    const now = Date.now();
    const previous = await this.deps.store.recordAddress(peer.peerId, peer.address, now);
    if (previous === null || previous === '') return false;
    this.deps.metrics.peerAddressChanges.inc();
    this.log.info({ peerId: peer.peerId, address: peer.address, previous }, 'peer address changed');
    await this.deps.store.publish({ type: 'updated', peerId: peer.peerId, address: peer.address, at: now });
    return true;
  }

  private track(work: Promise<void>): void {
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }
}
