import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from '@rps/common';
import { QUEUE_DEPTH_STATES, type QueueDepthState } from '../stores/run-queue.store';

/** The gateway's own metrics, registered on the process registry. */
export interface GatewayMetrics {
  requests: Counter<'route' | 'method' | 'status'>;
  requestDuration: Histogram<'route' | 'method'>;
  runsAccepted: Counter<'outcome'>;
  queueDepth: Gauge<'state'>;
  /** Runs per script call of the submit and the acknowledgement group commits. */
  batchSize: Histogram<'step'>;
}

/** What the queue-depth gauge reads on every scrape. */
export type QueueDepthSource = () => Promise<Record<QueueDepthState, number>>;

export function createGatewayMetrics(
  registry: Registry,
  depth: QueueDepthSource,
  logger: Logger,
): GatewayMetrics {
  const registers = [registry];
  return {
    requests: new Counter({
      name: 'rps_gateway_requests_total',
      help: 'Requests answered on the public port, by route pattern, method and status',
      labelNames: ['route', 'method', 'status'],
      registers,
    }),
    requestDuration: new Histogram({
      name: 'rps_gateway_request_duration_seconds',
      help: 'Time from request to response on the public port',
      labelNames: ['route', 'method'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
      registers,
    }),
    runsAccepted: new Counter({
      name: 'rps_gateway_runs_accepted_total',
      help: 'Run submissions answered 200, by outcome (created, resubmitted, existing)',
      labelNames: ['outcome'],
      registers,
    }),
    batchSize: new Histogram({
      name: 'rps_gateway_batch_size',
      help: 'Runs per Redis script call of the group-committed submit and acknowledgement steps',
      labelNames: ['step'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers,
    }),
    queueDepth: new Gauge({
      name: 'rps_gateway_queue_depth',
      help: 'Jobs on the runs queue by state, read from Redis on scrape',
      labelNames: ['state'],
      registers,
      async collect() {
        try {
          const counts = await depth();
          for (const state of QUEUE_DEPTH_STATES) this.set({ state }, counts[state]);
        } catch (err) {
          // A scrape while Redis is down still answers; the gauge drops out until it is back.
          this.reset();
          logger.warn(
            { err: { message: err instanceof Error ? err.message : String(err) } },
            'queue depth unavailable',
          );
        }
      },
    }),
  };
}

/**
 * Counts and times every request by its route pattern (never the raw path, so
 * run ids do not explode the label set).
 */
export function metricsMiddleware(metrics: GatewayMetrics): RequestHandler {
  return (req, res, next) => {
    const end = metrics.requestDuration.startTimer();
    res.on('finish', () => {
      const route = routeLabel(req.route);
      end({ route, method: req.method });
      metrics.requests.inc({ route, method: req.method, status: String(res.statusCode) });
    });
    next();
  };
}

function routeLabel(route: unknown): string {
  if (typeof route === 'object' && route !== null && 'path' in route && typeof route.path === 'string') {
    return route.path;
  }
  return 'unmatched';
}
