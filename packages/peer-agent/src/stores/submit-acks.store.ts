import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisKeys } from '@rps/common';

/** A claim's wait for its run's acknowledgement (see {@link SubmitAcks.watch}). */
export interface AckWatch {
  /**
   * Resolves after `ms`, or sooner: when the run's acknowledgement is
   * published, or (once) when the subscription has become active, so the
   * claim looks again and sees an acknowledgement that came before it.
   */
  wake(ms: number): Promise<void>;
  /** The claim stops waiting: the run's channel is left once nobody else waits on it. */
  close(): void;
}

/** A subscription that will never be answered (no connection, or SUBSCRIBE failed): the claims poll. */
const NEVER = new Promise<void>(() => undefined);

interface Waiting {
  /** Wakes the claims waiting on the channel. */
  wakers: Set<() => void>;
  /** Resolves once SUBSCRIBE was answered (never, if it failed: the claims poll). */
  subscribed: Promise<void>;
}

/**
 * Wakes a claim that found its run pending as soon as the gateway
 * acknowledges the submit, instead of after its next poll pause: the
 * gateway's acknowledgement script publishes the execution on the run's own
 * channel (`keys.runAcknowledged`), to which this agent's subscriber
 * connection is subscribed only while a claim of that run waits (so the
 * agent hears nothing of the pool's other runs). A message is a hint to look
 * again, never the look itself: the claim's compare-and-set decides, and a
 * missed message (the connection was down) costs one poll pause. Without a
 * connection every watch only sleeps.
 */
export class SubmitAcks {
  private readonly channels = new Map<string, Waiting>();

  constructor(
    /** A connection used for nothing else (subscribe mode); none: claims poll. */
    private readonly sub: Redis | undefined,
    private readonly keys: RedisKeys,
    private readonly logger: Logger,
  ) {
    sub?.on('message', (channel: string) => {
      for (const wake of this.channels.get(channel)?.wakers ?? []) wake();
    });
  }

  /** Whether a published acknowledgement can wake a claim (otherwise claims should poll often). */
  get listening(): boolean {
    return this.sub !== undefined;
  }

  /** Starts listening for the acknowledgement of `runId`'s pending submit. */
  watch(runId: number): AckWatch {
    const channel = this.keys.runAcknowledged(runId);
    const waiting = this.join(channel);
    /** The pending wake's end, while one is pending. */
    let wake: (() => void) | undefined;
    /** A message came while no wake was pending (the claim was looking): the next wake returns at once. */
    let heardMeanwhile = false;
    const waker = () => {
      if (wake) wake();
      else heardMeanwhile = true;
    };
    waiting.wakers.add(waker);
    // The subscription's answer counts as one wake: an acknowledgement
    // published before it was never heard, so the claim looks once more.
    let heardSubscribed = false;
    return {
      wake: (ms) =>
        new Promise<void>((resolve) => {
          if (heardMeanwhile) {
            heardMeanwhile = false;
            resolve();
            return;
          }
          const done = () => {
            clearTimeout(timer);
            if (wake === done) wake = undefined;
            resolve();
          };
          const timer = setTimeout(done, ms);
          wake = done;
          if (heardSubscribed) return;
          void waiting.subscribed.then(() => {
            if (heardSubscribed || wake !== done) return;
            heardSubscribed = true;
            done();
          });
        }),
      close: () => {
        waiting.wakers.delete(waker);
        wake = undefined;
        if (waiting.wakers.size > 0 || this.channels.get(channel) !== waiting) return;
        this.channels.delete(channel);
        this.sub?.unsubscribe(channel).catch(() => undefined);
      },
    };
  }

  private join(channel: string): Waiting {
    const known = this.channels.get(channel);
    if (known) return known;
    const subscribed = this.sub
      ? this.sub.subscribe(channel).then(
          () => undefined,
          (err: unknown) => {
            this.logger.debug(
              { err: String(err), channel },
              'acknowledgement channel not subscribed; polling',
            );
            return NEVER;
          },
        )
      : NEVER;
    const waiting: Waiting = { wakers: new Set(), subscribed };
    this.channels.set(channel, waiting);
    return waiting;
  }
}
