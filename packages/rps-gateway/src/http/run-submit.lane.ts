import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  errorAnswer,
  parseRunId,
  REQUEST_ID_HEADER,
  requestIdOf,
  writeErrorAnswer,
  type Logger,
} from '@rps/common';
import type { GatewayMetrics } from '../metrics/gateway.metrics';
import type { RunsService } from '../services/runs.service';
import { clientLogBindings, type ClientCertCheck } from './client-cert.middleware';
import { readRunBody, readsRunBody, type RunBody, type RunBodyStaging } from './run-body.middleware';

/** What the lane needs: the same services, metrics and checks as the Express route. */
export interface RunSubmitLaneDeps {
  runs: RunsService;
  metrics: GatewayMetrics;
  logger: Logger;
  checkClient: ClientCertCheck;
  bodyLimit: number;
  staging?: RunBodyStaging;
}

/** A run id as the lane takes it: canonical decimal digits, nothing after them (no query). */
const LANE_PATH = /^\/rps\/run\/(0|[1-9][0-9]{0,15})$/;
/** The route label of the request metrics, as Express's route gives it. */
const ROUTE = '/rps/run/:run_id';

/**
 * `POST /rps/run/:run_id`, IVIS-core's run request, served before Express
 * sees it: the one request whose cost IVIS-core feels (docs/gateway.md,
 * *Benchmark*). It does what the Express route does (app.ts: request
 * context, metrics, client certificate, body, submit, the error middleware's
 * answers), as plain functions shared with that route, without the router,
 * the per-request child loggers (made only when a line is written) and
 * Express's request and response wrappers. Returns false, leaving the request
 * to Express, for everything else, including the rare shapes of this one:
 * a compressed body, a path with a query, a trailing slash or a
 * non-canonical id (Express answers those exactly as before).
 */
export function runSubmitLane(
  deps: RunSubmitLaneDeps,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { runs, metrics, logger, checkClient, bodyLimit, staging } = deps;

  const readBody = (req: IncomingMessage, res: ServerResponse) =>
    new Promise<RunBody>((resolve, reject) =>
      readRunBody(req, res, bodyLimit, staging, (err, body) => {
        if (body) resolve(body);
        else reject(err ?? new Error('run body missing'));
      }),
    );

  const handle = async (req: IncomingMessage, res: ServerResponse, runId: number) => {
    // IVIS-core's 2 s start before the body is read, so the submit budget does too.
    const arrivedAt = Date.now();
    const started = process.hrtime.bigint();
    const endTimer = metrics.requestDuration.startTimer();
    const reqId = requestIdOf(req);
    res.setHeader(REQUEST_ID_HEADER, reqId);
    let bindings: Record<string, unknown> = { reqId };
    let log: Logger | undefined;
    const requestLog = () => (log ??= logger.child(bindings));
    res.once('finish', () => {
      endTimer({ route: ROUTE, method: 'POST' });
      metrics.requests.inc({ route: ROUTE, method: 'POST', status: String(res.statusCode) });
      if (logger.isLevelEnabled('debug')) {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        requestLog().debug(
          { method: 'POST', path: req.url, status: res.statusCode, ms: Math.round(ms * 10) / 10 },
          'request done',
        );
      }
    });
    try {
      const check = checkClient(req.socket, requestLog);
      const admitted = check instanceof Promise ? await check : check;
      bindings = { reqId, ...clientLogBindings(admitted) };
      log = undefined;
      const body = await readBody(req, res);
      const result = await runs.submit(runId, body.staged ?? body.raw, arrivedAt, body.meta);
      metrics.runsAccepted.inc({ outcome: result.outcome });
      if (logger.isLevelEnabled('info')) requestLog().info({ runId, ...result }, 'run accepted');
      res.writeHead(200).end();
    } catch (err) {
      // As Express does when an error follows the headers: the connection ends.
      if (res.headersSent) res.destroy();
      else writeErrorAnswer(res, errorAnswer(err, requestLog()));
    }
  };

  return (req, res) => {
    if (req.method !== 'POST' || !readsRunBody(req)) return false;
    const match = LANE_PATH.exec(req.url ?? '');
    const runId = match ? parseRunId(match[1]!) : null;
    if (runId === null) return false;
    void handle(req, res, runId);
    return true;
  };
}
