import { createPushGivenUpCounter, PEER_STATES, RUN_STATES } from '@rps/common';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The scheduler's own metrics, registered on the process registry. */
export interface SchedulerMetrics {
  peers: Gauge<'state'>;
  peersHalfDead: Gauge;
  runs: Gauge<'state'>;
  tickDuration: Histogram<'tick'>;
  ticks: Counter<'tick' | 'outcome'>;
  pushes: Counter<'kind' | 'outcome'>;
  /** common's `rps_pushes_given_up_total`, as on every push-worker host. */
  pushesGivenUp: Counter<'kind'>;
}

export function createSchedulerMetrics(registry: Registry): SchedulerMetrics {
  const registers = [registry];
  return {
    peers: new Gauge({
      name: 'rps_scheduler_peers',
      help: 'Registered peers by state, as of the last liveness tick',
      labelNames: ['state'],
      registers,
    }),
    peersHalfDead: new Gauge({
      name: 'rps_scheduler_peers_half_dead',
      help: 'Peers that heartbeat but whose admin endpoint did not answer the last sync probe',
      registers,
    }),
    runs: new Gauge({
      name: 'rps_scheduler_runs',
      help: 'Indexed runs by state, as of the last reconcile tick',
      labelNames: ['state'],
      registers,
    }),
    tickDuration: new Histogram({
      name: 'rps_scheduler_tick_duration_seconds',
      help: 'How long each periodic tick took',
      labelNames: ['tick'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    ticks: new Counter({
      name: 'rps_scheduler_ticks_total',
      help: 'Ticks this replica executed, by outcome',
      labelNames: ['tick', 'outcome'],
      registers,
    }),
    pushes: new Counter({
      name: 'rps_scheduler_pushes_total',
      help: 'Pushes to IVIS-core delivered by this replica, by outcome',
      labelNames: ['kind', 'outcome'],
      registers,
    }),
    pushesGivenUp: createPushGivenUpCounter(registry),
  };
}

/** Sets a by-state gauge so that states with no members read 0 rather than keeping an old value. */
export function setByState(
  gauge: Gauge<'state'>,
  counts: Map<string, number>,
  states: readonly string[],
): void {
  for (const state of states) gauge.set({ state }, counts.get(state) ?? 0);
}

export const PEER_GAUGE_STATES: readonly string[] = PEER_STATES;
export const RUN_GAUGE_STATES: readonly string[] = RUN_STATES;
