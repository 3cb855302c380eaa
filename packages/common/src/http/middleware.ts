import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { ZodError } from 'zod';
import { REDIS_UNAVAILABLE_TEXT, redisUnavailableReason } from '../redis/unavailable';
import { AppError, type ErrorBody } from './app-error';
import { appError, retryAfterFor } from './error-catalog';

const REQUEST_ID_HEADER = 'x-request-id';

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by {@link requestContext}: the request id and a child logger carrying it. */
    id: string;
    log: Logger;
  }
}

/** A sane incoming `x-request-id` (so a request can be followed across services), else a new one. */
export function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers[REQUEST_ID_HEADER];
  return typeof incoming === 'string' && /^[\w.-]{1,64}$/.test(incoming) ? incoming : randomUUID();
}

/** The response header that carries the request id. */
export { REQUEST_ID_HEADER };

/**
 * Gives every request an id (a sane incoming `x-request-id` is kept, so a
 * request can be followed across services) and a child logger carrying it,
 * and logs one line per finished request.
 */
export function requestContext(logger: Logger): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    req.id = requestIdOf(req);
    req.log = logger.child({ reqId: req.id });
    res.setHeader(REQUEST_ID_HEADER, req.id);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      req.log.debug(
        { method: req.method, path: req.path, status: res.statusCode, ms: Math.round(ms * 10) / 10 },
        'request done',
      );
    });
    next();
  };
}

/** Builds the error body from a zod error: one detail per issue. */
export function zodErrorBody(err: ZodError, what = 'invalid request'): ErrorBody {
  return {
    error: what,
    code: 'invalid_request',
    details: err.issues.map((i) => ({ path: i.path.map(String).join('.') || '(body)', message: i.message })),
  };
}

interface HttpishError {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
  message?: string;
}

/**
 * The AppError for a Redis unavailability (connection, timeout, LOADING,
 * MISCONF, OOM...), or null when `err` is something else. Request paths map
 * these to 503 `redis_unavailable` naming the problem, never to 500.
 */
export function redisUnavailableError(err: unknown): AppError | null {
  const reason = redisUnavailableReason(err);
  if (!reason) return null;
  return appError('redis_unavailable', `Redis is unavailable: ${REDIS_UNAVAILABLE_TEXT[reason]}`, [
    { path: 'redis', message: reason },
  ]);
}

/** The answer to an error: its status, JSON body and `Retry-After` (seconds, every 503 has one). */
export interface ErrorAnswer {
  status: number;
  body: ErrorBody;
  retryAfter?: number;
}

/**
 * What a request that failed with `err` answers, logged on `log`: zod
 * errors become 400, AppError its own status, body-parser errors (malformed
 * JSON, too large) their 4xx, Redis unavailability 503 `redis_unavailable`
 * (logged as a warning: it is an outage, not a bug), anything else 500
 * logged with the error and answered without internals.
 */
export function errorAnswer(err: unknown, log: Logger): ErrorAnswer {
  let status = 500;
  let body: ErrorBody = { error: 'internal error', code: 'internal', details: [] };
  const unavailable = redisUnavailableError(err);
  if (unavailable) {
    status = unavailable.status;
    body = { error: unavailable.message, code: unavailable.code, details: [...unavailable.details] };
  } else if (err instanceof ZodError) {
    status = 400;
    body = zodErrorBody(err);
  } else if (err instanceof AppError) {
    status = err.status;
    body = { error: err.message, code: err.code, details: [...err.details] };
  } else if (isClientHttpError(err)) {
    status = err.status ?? err.statusCode ?? 400;
    body = { error: clientErrorMessage(err), code: err.type ?? 'bad_request', details: [] };
  }
  if (unavailable) log.warn({ err: { message: (err as Error).message } }, 'redis unavailable');
  else if (status >= 500) log.error({ err }, 'request failed');
  else log.info({ status, code: body.code }, 'request rejected');
  return { status, body, retryAfter: retryAfterFor(body.code, status) };
}

/**
 * Writes an {@link ErrorAnswer} on a plain Node response, with the headers
 * Express's `res.status().json()` gives it (a path served outside Express).
 */
export function writeErrorAnswer(res: ServerResponse, { status, body, retryAfter }: ErrorAnswer): void {
  const json = JSON.stringify(body);
  if (retryAfter !== undefined) res.setHeader('retry-after', String(retryAfter));
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(json),
  });
  res.end(json);
}

/**
 * The one error middleware (STYLE.md rule 7): {@link errorAnswer}, answered
 * as JSON. Every 503 carries `Retry-After`.
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const { status, body, retryAfter } = errorAnswer(err, req.log ?? logger);
    if (retryAfter !== undefined) res.setHeader('retry-after', String(retryAfter));
    res.status(status).json(body);
  };
}

function isClientHttpError(err: unknown): err is HttpishError {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as HttpishError;
  const status = e.status ?? e.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 && e.expose !== false;
}

function clientErrorMessage(err: HttpishError): string {
  if (err.type === 'entity.parse.failed') return 'request body is not valid JSON';
  if (err.type === 'entity.too.large') return 'request body is larger than the configured limit';
  return err.message ?? 'bad request';
}

/** 404 JSON for routes nobody serves. */
export function notFoundHandler(): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    next(new AppError('not_found', 404, `no route for ${req.method} ${req.path}`));
  };
}
