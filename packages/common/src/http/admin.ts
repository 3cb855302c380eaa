import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type Express } from 'express';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { errorHandler, notFoundHandler, requestContext } from './middleware';

/** A readiness check: resolves when the dependency is usable, rejects with the reason otherwise. */
export type ReadinessCheck = () => Promise<void>;

/** What the admin listener serves. */
export interface AdminAppOptions {
  logger: Logger;
  /** The process's metrics registry (also used by the service's own metrics). */
  registry: Registry;
  /** Named checks behind `/readyz`, e.g. `{ redis: () => redis.ping() }`. */
  checks: Record<string, ReadinessCheck>;
  /** Per-check deadline; a check that hangs counts as failed. */
  checkTimeoutMs?: number;
}

/** A metrics registry with Node's default process metrics, prefixed per service. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * The admin app every service serves on its admin listener (DESIGN.md):
 * `GET /healthz` (the process answers), `GET /readyz` (every check passes,
 * else 503 naming the failing ones) and `GET /metrics` (Prometheus text).
 */
export function createAdminApp({
  logger,
  registry,
  checks,
  checkTimeoutMs = 2000,
}: AdminAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(requestContext(logger));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const results = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await withTimeout(check(), checkTimeoutMs);
          return { name, ok: true as const };
        } catch (err) {
          return { name, ok: false as const, error: err instanceof Error ? err.message : String(err) };
        }
      }),
    );
    const failed = results.filter((r) => !r.ok);
    res.status(failed.length === 0 ? 200 : 503).json({
      status: failed.length === 0 ? 'ready' : 'not ready',
      checks: Object.fromEntries(results.map((r) => [r.name, r.ok ? 'ok' : r.error])),
    });
  });
  app.get('/metrics', async (_req, res) => {
    res.setHeader('content-type', registry.contentType);
    res.send(await registry.metrics());
  });
  app.use(notFoundHandler());
  app.use(errorHandler(logger));
  return app;
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Where a server listens. */
export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * Starts listening and resolves with the bound address (port 0 picks a free
 * port, which tests use). Rejects on a listen error such as EADDRINUSE. The
 * server keeps an error listener for errors after start.
 */
export async function listen(server: Server, address: ListenAddress, logger: Logger): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(address.port, address.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => logger.error({ err }, 'server error'));
  return server.address() as AddressInfo;
}

/** Closes a server: stops accepting, ends idle keep-alive sockets, waits for in-flight requests. */
export async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  await closed;
}
