import type { PeerEvent, PeerRecord } from '@rps/common';
import type { Logger } from 'pino';
import type { OwnStateChange, PeerStore } from '../stores/peer.store';

/** The static part of the peer record. */
export interface PeerIdentity {
  id: string;
  address: string;
  capacity: number;
  executor: string;
  version: string;
  adminUrl: string;
}

export interface RegistrationDeps {
  store: PeerStore;
  identity: PeerIdentity;
  heartbeatIntervalMs: number;
  logger: Logger;
  /** An operator removed this peer (record state `removed`): the agent must stop taking runs. */
  onRemoved: () => void;
}

/** How the agent came back: removed (take nothing), draining (a drain from before the restart) or active. */
export type RegisterOutcome = 'active' | 'draining' | 'removed';

/**
 * The peer's presence in the pool: registers (`joined`; a drain asked before
 * a restart is kept), heartbeats (record and `peers` score, re-asserting its
 * address and its own state, so a peer declared lost during a partition comes
 * back), drains and undrains (persisted in the record's `drain` flag), and on
 * a clean shutdown marks itself `stopped` (`left`): still a member of the
 * pool, so durable commands keep reaching its stream. Only an operator
 * removes a peer (`removed`), and the agent never overwrites that.
 */
export class Registration {
  private state: 'active' | 'draining' = 'active';
  private registeredAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> = Promise.resolve();
  private removed = false;
  private stopped = false;

  constructor(private readonly deps: RegistrationDeps) {}

  get draining(): boolean {
    return this.state === 'draining';
  }

  async register(): Promise<RegisterOutcome> {
    const now = Date.now();
    this.registeredAt = now;
    const { previousState, state } = await this.deps.store.register(this.record(now));
    if (state === null) {
      this.removed = true;
      this.deps.logger.error('peer was removed by an operator; not registering, taking no runs');
      return 'removed';
    }
    this.state = state;
    await this.deps.store.publish(this.event('joined', now));
    this.deps.logger.info({ state, previousState }, 'peer registered');
    return state;
  }

  startHeartbeat(): void {
    if (this.removed) return;
    this.timer ??= setInterval(() => {
      this.beating = this.heartbeat().catch((err: unknown) =>
        this.deps.logger.warn({ err: String(err) }, 'heartbeat failed'),
      );
    }, this.deps.heartbeatIntervalMs);
  }

  /** One heartbeat. */
  async heartbeat(): Promise<void> {
    if (this.removed || this.stopped) return;
    const now = Date.now();
    const { previousState, previousAddress } = await this.deps.store.heartbeat(this.record(now));
    if (previousState === 'removed') {
      this.wasRemoved();
    } else if (previousState === '' || previousState === 'lost' || previousState === 'stopped') {
      this.deps.logger.warn({ previousState }, 'peer record was gone, lost or stopped; rejoined');
      await this.deps.store.publish(this.event('joined', now));
    } else if (previousAddress !== this.deps.identity.address) {
      await this.deps.store.publish(this.event('updated', now));
    }
  }

  /** Drain (SIGUSR2, `drain` command): persisted, so a restarted agent still takes no runs. */
  async markDraining(): Promise<void> {
    this.state = 'draining';
    await this.change({ state: 'draining', drain: true }, 'draining');
    this.deps.logger.info('peer draining');
  }

  /** Undrain (`undrain` command): takes runs again; false when the peer is removed. */
  async markActive(): Promise<boolean> {
    if (this.removed) return false;
    this.state = 'active';
    if (!(await this.change({ state: 'active', drain: false }, 'updated'))) return false;
    this.deps.logger.info('peer undrained');
    return true;
  }

  /** Clean shutdown: state `stopped` + `left`; the record, score and stream stay. */
  async markStopped(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.beating;
    if (this.removed || this.stopped) return;
    this.stopped = true;
    const now = Date.now();
    await this.change({ state: 'stopped', stoppedAt: now }, 'left');
    this.deps.logger.info('peer stopped');
  }

  /** False when the peer turned out removed (nothing written). */
  private async change(change: OwnStateChange, type: PeerEvent['type']): Promise<boolean> {
    const previous = await this.deps.store.setOwnState(
      this.deps.identity.id,
      change,
      this.event(type, Date.now()),
    );
    // A missing record is recreated (with this state) by the next heartbeat.
    if (previous !== 'removed') return true;
    this.wasRemoved();
    return false;
  }

  private wasRemoved(): void {
    if (this.removed) return;
    this.removed = true;
    this.deps.logger.warn('peer was removed by an operator; taking no more runs');
    this.deps.onRemoved();
  }

  private record(now: number): PeerRecord {
    return {
      ...this.deps.identity,
      state: this.state,
      drain: this.state === 'draining',
      registeredAt: this.registeredAt,
      heartbeatAt: now,
    };
  }

  private event(type: PeerEvent['type'], at: number): PeerEvent {
    return { type, peerId: this.deps.identity.id, address: this.deps.identity.address, at };
  }
}
