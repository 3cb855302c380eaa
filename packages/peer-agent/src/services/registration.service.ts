import type { PeerEvent, PeerRecord } from '@rps/common';
import type { Logger } from 'pino';
import type { PeerStore } from '../stores/peer.store';

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

/**
 * The peer's presence in the pool: registers (`joined`), heartbeats (record
 * and `peers` score, re-asserting its address and its own state, so a peer
 * declared lost during a partition comes back), drains and deregisters
 * (`left`, state `removed`) on a clean shutdown.
 */
export class Registration {
  private state: 'active' | 'draining' = 'active';
  private registeredAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> = Promise.resolve();
  private removed = false;

  constructor(private readonly deps: RegistrationDeps) {}

  get draining(): boolean {
    return this.state === 'draining';
  }

  async register(): Promise<void> {
    const now = Date.now();
    this.registeredAt = now;
    await this.deps.store.register(this.record(now), this.event('joined', now));
    this.deps.logger.info({ state: this.state }, 'peer registered');
  }

  startHeartbeat(): void {
    this.timer ??= setInterval(() => {
      this.beating = this.heartbeat().catch((err: unknown) =>
        this.deps.logger.warn({ err: String(err) }, 'heartbeat failed'),
      );
    }, this.deps.heartbeatIntervalMs);
  }

  /** One heartbeat. */
  async heartbeat(): Promise<void> {
    if (this.removed) return;
    const now = Date.now();
    const { previousState, previousAddress } = await this.deps.store.heartbeat(this.record(now));
    if (previousState === 'removed') {
      this.removed = true;
      this.deps.logger.warn('peer was removed by an operator; taking no more runs');
      this.deps.onRemoved();
    } else if (previousState === '' || previousState === 'lost') {
      this.deps.logger.warn({ previousState }, 'peer record was gone or lost; rejoined');
      await this.deps.store.publish(this.event('joined', now));
    } else if (previousAddress !== this.deps.identity.address) {
      await this.deps.store.publish(this.event('updated', now));
    }
  }

  async markDraining(): Promise<void> {
    if (this.state === 'draining') return;
    this.state = 'draining';
    await this.deps.store.setState(this.deps.identity.id, 'draining', this.event('draining', Date.now()));
    this.deps.logger.info('peer draining');
  }

  /** Clean deregistration: the only path to state `removed` + `left` from the agent itself. */
  async deregister(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.beating;
    if (this.removed) return;
    this.removed = true;
    await this.deps.store.setState(this.deps.identity.id, 'removed', this.event('left', Date.now()));
    this.deps.logger.info('peer deregistered');
  }

  private record(now: number): PeerRecord {
    return { ...this.deps.identity, state: this.state, registeredAt: this.registeredAt, heartbeatAt: now };
  }

  private event(type: PeerEvent['type'], at: number): PeerEvent {
    return { type, peerId: this.deps.identity.id, address: this.deps.identity.address, at };
  }
}
