import { Counter, type Registry } from 'prom-client';

/** The watchdog's own metrics, registered on the process registry. */
export interface WatchdogMetrics {
  checks: Counter<'outcome'>;
  notifications: Counter<'outcome'>;
  notifyAttempts: Counter<'outcome'>;
  peerAddressChanges: Counter;
}

export function createWatchdogMetrics(registry: Registry): WatchdogMetrics {
  const registers = [registry];
  return {
    checks: new Counter({
      name: 'rps_watchdog_checks_total',
      help: 'Public address checks by outcome (unchanged, changed, error)',
      labelNames: ['outcome'],
      registers,
    }),
    notifications: new Counter({
      name: 'rps_watchdog_notifications_total',
      help: 'Change notifications per target by final outcome (delivered, gave_up, superseded)',
      labelNames: ['outcome'],
      registers,
    }),
    notifyAttempts: new Counter({
      name: 'rps_watchdog_notify_attempts_total',
      help: 'Single notification requests by outcome (ok, failed)',
      labelNames: ['outcome'],
      registers,
    }),
    peerAddressChanges: new Counter({
      name: 'rps_watchdog_peer_address_changes_total',
      help: 'Peer address changes recorded and announced',
      registers,
    }),
  };
}
