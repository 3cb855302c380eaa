import { isIP } from 'node:net';
import type { RedisKeys, RpsConfig } from '@rps/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { Agent } from 'undici';
import { readAddress, type AddressSourceDeps } from './services/address-source.service';
import { IpWatchService, type CheckResult } from './services/ip-watch.service';
import {
  Notifier,
  shownTarget,
  type NotificationResult,
  type NotifyRetryOptions,
} from './services/notifier.service';
import { PeerAddressService, type PeerPassSummary } from './services/peer-address.service';
import { createWatchdogMetrics, type WatchdogMetrics } from './services/watchdog.metrics';
import { IpStore } from './stores/ip.store';
import { PeerAddressStore } from './stores/peer-address.store';

/** Tunables that are not (yet) config keys; defaults suit production. */
export interface WatchdogTuning {
  notifyRetry: NotifyRetryOptions;
  /** How often peers' addresses are re-read in full (events make most changes show at once). */
  peerPollMs: number;
  /** Deadline of an echo URL request or a command. */
  sourceTimeoutMs: number;
  /** Entries kept in each address history list. */
  historyCap: number;
  /**
   * A target that was not told the current address (the watchdog died before
   * notifying, or gave up on a target that was down) is told again at a
   * check, at most this often per target.
   */
  catchUpAfterMs: number;
}

/** What {@link createService} needs; main.ts builds it, tests build their own. */
export interface WatchdogDeps {
  config: RpsConfig<'watchdog'>['watchdog'];
  keys: RedisKeys;
  /** A worker-role connection (retries forever). */
  redis: Redis;
  /** A dedicated connection for the peer events subscription. */
  subscriber: Redis;
  logger: Logger;
  registry: Registry;
  tuning?: Partial<WatchdogTuning>;
  /** Called with each target's final outcome per change (logs and metrics see it too). */
  onNotification?: (result: NotificationResult) => void;
  /** Replaces os.networkInterfaces (tests). */
  networkInterfaces?: AddressSourceDeps['networkInterfaces'];
}

/** The built watchdog: nothing runs until {@link WatchdogService.start}. */
export interface WatchdogService {
  readonly metrics: WatchdogMetrics;
  start(): Promise<void>;
  /** Stops the loops and abandons notifications still retrying; leaves Redis to the caller. */
  stop(): Promise<void>;
  /** One public address check now (tests, operators' one-offs). */
  checkNow(): Promise<CheckResult>;
  /** One pass over the peers' addresses now. */
  checkPeersNow(): Promise<PeerPassSummary>;
  /** Resolves when no notification is being delivered. */
  notificationsIdle(): Promise<void>;
}

/** Builds the watchdog from its dependencies without starting anything. */
export function createService(deps: WatchdogDeps): WatchdogService {
  const { config, keys, redis, subscriber, logger } = deps;
  if (config.override !== null && isIP(config.override) === 0) {
    throw new Error(`watchdog.override: ${JSON.stringify(config.override)} is not an IP address`);
  }
  const tuning: WatchdogTuning = {
    notifyRetry: { attempts: 5, baseDelayMs: 1000, maxDelayMs: 30_000 },
    peerPollMs: Math.min(config.intervalMs, 5000),
    sourceTimeoutMs: Math.min(config.intervalMs, 10_000),
    historyCap: 100,
    catchUpAfterMs: 60_000,
    ...deps.tuning,
  };
  const metrics = createWatchdogMetrics(deps.registry);
  const dispatcher = new Agent({ connect: { timeout: config.notifyTimeoutMs }, keepAliveTimeout: 4000 });
  const ipStore = new IpStore(redis, keys, tuning.historyCap);
  const peerStore = new PeerAddressStore({ redis, subscriber, keys, historyCap: tuning.historyCap, logger });
  const notifier = new Notifier({
    targets: config.notify,
    timeoutMs: config.notifyTimeoutMs,
    retry: tuning.notifyRetry,
    dispatcher,
    metrics,
    logger,
    catchUpAfterMs: tuning.catchUpAfterMs,
    onResult: (result) => {
      // Durable, so a later check (or a later life) knows who still needs telling.
      if (result.outcome === 'delivered') {
        ipStore.markDelivered(shownTarget(result.target), result.ip).catch((err: unknown) => {
          logger.warn({ err: String(err) }, 'delivered address not recorded');
        });
      }
      deps.onNotification?.(result);
    },
  });
  const sourceDeps: AddressSourceDeps = {
    timeoutMs: tuning.sourceTimeoutMs,
    dispatcher,
    ...(deps.networkInterfaces ? { networkInterfaces: deps.networkInterfaces } : {}),
  };
  const ipWatch = new IpWatchService({
    store: ipStore,
    notifier,
    metrics,
    override: config.override,
    source: config.source,
    readAddress: (source) => readAddress(source, sourceDeps),
    intervalMs: config.intervalMs,
    logger,
  });
  const peerAddresses = new PeerAddressService({
    store: peerStore,
    metrics,
    pollMs: tuning.peerPollMs,
    logger,
  });

  let stopping: Promise<void> | undefined;
  return {
    metrics,
    async start() {
      const instanceId = await ipStore.instanceId();
      ipWatch.start();
      await peerAddresses.start();
      logger.info(
        {
          instanceId,
          source: config.override !== null ? 'override' : config.source.kind,
          targets: config.notify.length,
        },
        'watchdog started',
      );
    },
    stop() {
      stopping ??= (async () => {
        await ipWatch.stop();
        await peerAddresses.stop();
        await notifier.stop();
        await dispatcher.close();
      })();
      return stopping;
    },
    checkNow: () => ipWatch.check(),
    checkPeersNow: () => peerAddresses.checkAll(),
    notificationsIdle: () => notifier.idle(),
  };
}
