import { Router, type RequestHandler } from 'express';
import { runBodyReader, type RunBodyStaging } from '../http/run-body.middleware';
import type { RunsService } from '../services/runs.service';
import type { StopService } from '../services/stop.service';
import type { GatewayMetrics } from '../metrics/gateway.metrics';
import { parseIdParam } from './params';

/** What the run routes need. */
export interface RunsRoutesDeps {
  runs: RunsService;
  stop: StopService;
  metrics: GatewayMetrics;
  bodyLimit: number;
  /** Where bodies above a size are staged while they upload (none: every body is buffered). */
  staging?: RunBodyStaging;
}

/**
 * `POST /rps/run/:run_id`, IVIS-core's run request (ivis-protocol.md 1.2):
 * the handlers after the request context and the client-certificate guard.
 * app.ts mounts them as the app's first route, so the hot request of the
 * gateway passes one router layer instead of every middleware's. Success is
 * an empty 200, as the RJR answers.
 */
export function runSubmitHandlers({
  runs,
  metrics,
  bodyLimit,
  staging,
}: Pick<RunsRoutesDeps, 'runs' | 'metrics' | 'bodyLimit' | 'staging'>): RequestHandler[] {
  // Raw bytes whatever the content type: the body is stored and forwarded
  // byte for byte, and checked in one pass while it arrives.
  const rawBody = runBodyReader(bodyLimit, staging);

  // IVIS-core's 2 s start before the body is read, so the submit budget does too.
  const arrival: RequestHandler = (_req, res, next) => {
    res.locals.arrivedAt = Date.now();
    next();
  };

  const submit: RequestHandler = async (req, res) => {
    const runId = parseIdParam('run_id', req.params.run_id);
    const body: unknown = req.body;
    const raw = res.locals.stagedRunBody ?? (Buffer.isBuffer(body) ? body : Buffer.alloc(0));
    const arrivedAt = typeof res.locals.arrivedAt === 'number' ? res.locals.arrivedAt : Date.now();
    const result = await runs.submit(runId, raw, arrivedAt, res.locals.runBodyMeta);
    metrics.runsAccepted.inc({ outcome: result.outcome });
    req.log.info({ runId, ...result }, 'run accepted');
    res.status(200).end();
  };
  return [arrival, rawBody, submit];
}

/** The path of {@link runSubmitHandlers}. */
export const RUN_SUBMIT_PATH = '/rps/run/:run_id';

/**
 * The rest of the job-runner interface for runs under `/rps` (ivis-protocol.md
 * 1.2): status, stop, delete. Success bodies mirror the RJR: the status
 * object for GET, empty otherwise.
 */
export function runsRoutes({ stop, runs }: Pick<RunsRoutesDeps, 'runs' | 'stop'>): Router {
  const router = Router();

  router.get('/rps/run/:run_id', async (req, res) => {
    const runId = parseIdParam('run_id', req.params.run_id);
    res.status(200).json(await runs.status(runId));
  });

  // IVIS-core sends `{"timeout":2000}` here by mistake; the body means nothing.
  router.post('/rps/run/:run_id/stop', async (req, res) => {
    const runId = parseIdParam('run_id', req.params.run_id);
    const outcome = await stop.stop(runId);
    req.log.info({ runId, outcome }, 'stop handled');
    res.status(200).end();
  });

  router.delete('/rps/run/:run_id', async (req, res) => {
    const runId = parseIdParam('run_id', req.params.run_id);
    await runs.delete(runId);
    res.status(200).end();
  });

  return router;
}
