import type { Logger } from 'pino';
import type { PeerSource } from '../stores/peer.store';
import type { AccessList } from './access-list.service';

/** Options of {@link PeerSync}. */
export interface PeerSyncOptions {
  /** Full re-read of the registry, the safety net for missed events. */
  refreshMs: number;
}

/**
 * Keeps the access list in step with the peer registry without restarts:
 * events (a hint naming a peer) re-read that peer at once, and a periodic
 * full refresh repairs anything missed. During a Redis outage the last known
 * list stays in force rather than locking every peer out.
 */
export class PeerSync {
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  private refreshing: Promise<void> | undefined;
  /** Bumped per event; a refresh that started earlier must not undo what an event applied later. */
  private seq = 0;
  private readonly eventSeq = new Map<string, number>();
  private loadedOnce = false;
  private stopped = false;

  constructor(
    private readonly source: PeerSource,
    private readonly accessList: AccessList,
    private readonly options: PeerSyncOptions,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'peer-sync' });
  }

  /** True once the registry has been read at least once (readiness). */
  get loaded(): boolean {
    return this.loadedOnce;
  }

  /** Subscribes, loads the registry and starts the periodic refresh; Redis failures are logged and retried. */
  async start(): Promise<void> {
    await this.subscribe();
    await this.refresh('start');
    this.timer = setInterval(() => void this.refresh('periodic'), this.options.refreshMs);
    this.timer.unref();
  }

  /** True while the event subscription is active (false means only the periodic refresh applies changes). */
  get subscribed(): boolean {
    return this.unsubscribe !== undefined;
  }

  /**
   * Subscribes to peer events; a failed attempt is retried every second in
   * the background, because without the subscription changes would wait for
   * the periodic refresh. ioredis keeps an established subscription across
   * reconnects by itself.
   */
  private async subscribe(): Promise<void> {
    try {
      this.unsubscribe = await this.source.subscribe({
        onEvent: (event) => void this.refreshPeer(event.peerId, event.type),
        onResubscribed: () => void this.refresh('resubscribed'),
      });
    } catch (err) {
      this.log.warn({ err: { message: (err as Error).message } }, 'peer event subscription failed, retrying');
      if (this.stopped) return;
      this.retryTimer = setTimeout(() => void this.subscribe().then(() => this.refresh('subscribed')), 1000);
      this.retryTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.timer);
    await this.refreshing;
    await this.unsubscribe?.().catch(() => undefined);
  }

  /** Re-reads the whole registry; concurrent callers share one run. */
  refresh(reason: string): Promise<void> {
    this.refreshing ??= this.runRefresh(reason).finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async runRefresh(reason: string): Promise<void> {
    if (this.stopped) return;
    const startedAt = this.seq;
    try {
      const records = await this.source.readAll();
      if (this.stopped) return;
      const bad = this.accessList.replaceAll(records);
      if (bad.length > 0) this.log.warn({ peerIds: bad }, 'peer records with an unusable address');
      for (const [peerId, seq] of this.eventSeq) {
        // An event arrived while this snapshot was read: it may be older than
        // what the event applied, so read that peer once more.
        if (seq > startedAt) void this.refreshPeer(peerId, 'recheck');
        else this.eventSeq.delete(peerId);
      }
      if (!this.loadedOnce || reason !== 'periodic') {
        this.log.info({ reason, peers: this.accessList.size }, 'peer allow-list loaded');
      }
      this.loadedOnce = true;
    } catch (err) {
      this.log.warn({ reason, err: { message: (err as Error).message } }, 'peer allow-list refresh failed');
    }
  }

  private async refreshPeer(peerId: string, why: string): Promise<void> {
    const mySeq = ++this.seq;
    this.eventSeq.set(peerId, mySeq);
    try {
      const record = await this.source.read(peerId);
      // A later read of the same peer (or a full refresh begun after this one) wins.
      if (this.stopped || this.eventSeq.get(peerId) !== mySeq) return;
      if (!this.accessList.apply(peerId, record)) {
        this.log.warn({ peerId }, 'peer record with an unusable address');
      }
      this.log.info(
        { peerId, event: why, address: record?.address, state: record?.state ?? 'gone' },
        'peer allow-list updated',
      );
    } catch (err) {
      this.log.warn({ peerId, err: { message: (err as Error).message } }, 'peer re-read failed');
    }
  }
}
