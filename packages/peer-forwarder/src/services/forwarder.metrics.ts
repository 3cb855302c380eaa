import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The forwarder's own Prometheus metrics, all labelled by route (`es`, `trusted`, `sandbox`). */
export interface ForwarderMetrics {
  requests: Counter<'route' | 'status'>;
  upstreamErrors: Counter<'route' | 'kind'>;
  duration: Histogram<'route'>;
  bytes: Counter<'route' | 'direction'>;
  allowedPeers: Gauge;
  /** Counts one finished request (status, latency, bytes); counts reach the counters at the next scrape. */
  countRequest(route: string, status: number, seconds: number, bytesIn: number, bytesOut: number): void;
}

/** Registers the metrics on the process registry (once per registry). */
export function createForwarderMetrics(registry: Registry, allowedPeers: () => number): ForwarderMetrics {
  const registers = [registry];
  // prom-client hashes the label set on every inc(), also through a cached
  // child; a relay counts per request, so request and byte counts gather in
  // plain numbers here and reach the counters when a scrape collects them.
  const pending = new Map<string, { statuses: Map<number, number>; bytesIn: number; bytesOut: number }>();
  const metrics: Omit<ForwarderMetrics, 'countRequest'> = {
    requests: new Counter({
      name: 'rps_forwarder_requests_total',
      help: 'Requests answered, by route and HTTP status (403 refused source, 499 peer went away, 502/504 upstream failure)',
      labelNames: ['route', 'status'],
      registers,
      collect() {
        for (const [route, p] of pending) {
          for (const [status, n] of p.statuses) if (n > 0) this.inc({ route, status }, n);
          p.statuses.clear();
        }
      },
    }),
    upstreamErrors: new Counter({
      name: 'rps_forwarder_upstream_errors_total',
      help: 'Upstream failures by route and kind (timeout, connect, tls, reset, protocol)',
      labelNames: ['route', 'kind'],
      registers,
    }),
    duration: new Histogram({
      name: 'rps_forwarder_request_duration_seconds',
      help: 'Time from request start to the end of the response, by route',
      labelNames: ['route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    bytes: new Counter({
      name: 'rps_forwarder_bytes_total',
      help: 'Body bytes relayed, by route and direction (in: peer to upstream, out: upstream to peer)',
      labelNames: ['route', 'direction'],
      registers,
      collect() {
        for (const [route, p] of pending) {
          if (p.bytesIn > 0) this.inc({ route, direction: 'in' }, p.bytesIn);
          if (p.bytesOut > 0) this.inc({ route, direction: 'out' }, p.bytesOut);
          p.bytesIn = 0;
          p.bytesOut = 0;
        }
      },
    }),
    allowedPeers: new Gauge({
      name: 'rps_forwarder_allowed_peers',
      help: 'Registered peers currently on the allow-list (neither stopped nor removed)',
      registers,
      collect() {
        this.set(allowedPeers());
      },
    }),
  };
  // The histogram has no bulk update: one observe per request through a
  // child resolved once per route.
  const durations = new Map<string, ReturnType<typeof metrics.duration.labels>>();
  return {
    ...metrics,
    countRequest(route, status, seconds, bytesIn, bytesOut) {
      let p = pending.get(route);
      if (!p) pending.set(route, (p = { statuses: new Map(), bytesIn: 0, bytesOut: 0 }));
      p.statuses.set(status, (p.statuses.get(status) ?? 0) + 1);
      p.bytesIn += bytesIn;
      p.bytesOut += bytesOut;
      let duration = durations.get(route);
      if (!duration) durations.set(route, (duration = metrics.duration.labels({ route })));
      duration.observe(seconds);
    },
  };
}
