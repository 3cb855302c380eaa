import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type RequestHandler } from 'express';
import { redisUnavailableError } from '@rps/common';
import { RunBodyValidator } from '../services/run-body.validator';
import type { RunRequestMeta } from '../services/run-request.parser';
import type { RunUploadStore, StagedRunBody } from '../stores/run-upload.store';

declare module 'express-serve-static-core' {
  interface Locals {
    /** The one-pass validator's verdict on the body, read while it arrived (null: ask the reference). */
    runBodyMeta?: RunRequestMeta | null;
    /** A large body staged in Redis as it arrived (then `req.body` is unset and `runBodyMeta` set). */
    stagedRunBody?: StagedRunBody;
  }
}

/** The error raw-body gives, so the error middleware answers it the same way (413 `entity.too.large`). */
function clientError(status: number, type: string, message: string): Error {
  return Object.assign(new Error(message), { status, statusCode: status, type, expose: true });
}

const sizeMismatch = () =>
  clientError(400, 'request.size.invalid', 'request size did not match content length');

/** What a body reader does on the request's events. */
interface BodyEvents {
  data: (chunk: Buffer) => void;
  end: () => void;
  error: (err: Error) => void;
  aborted: () => void;
}

/** Starts (`on`) or stops (`off`) listening to a request body's events. */
function bodyEvents(req: IncomingMessage, events: BodyEvents, how: 'on' | 'off'): void {
  for (const name of ['data', 'end', 'error', 'aborted'] as const) req[how](name, events[name]);
}

/** Where large bodies go, and from which `content-length` on. */
export interface RunBodyStaging {
  uploads: RunUploadStore;
  /** A body declaring more bytes than this is staged in Redis as it arrives. */
  aboveBytes: number;
}

/** A run body read off the request, with the one-pass validator's verdict on it (null: ask the reference). */
export type RunBody =
  | { raw: Buffer; staged?: undefined; meta: RunRequestMeta | null }
  | { raw?: undefined; staged: StagedRunBody; meta: RunRequestMeta | null };

/** Called once with the body, or with the error to answer (the rest of the body is drained). */
export type RunBodyDone = (err: Error | null, body?: RunBody) => void;

/** Whether {@link readRunBody} can read this request (false: a compressed body, for `express.raw`). */
export function readsRunBody(req: IncomingMessage): boolean {
  const encoding = req.headers['content-encoding'];
  return encoding === undefined || encoding.toLowerCase() === 'identity';
}

/**
 * Reads an uncompressed run body as raw bytes whatever the content type, and
 * runs the one-pass validator over each chunk on the way, so a large archive
 * is checked while it uploads and never turned into a string or an array of
 * numbers. A body of up to `staging.aboveBytes` goes into one buffer sized
 * by `content-length` (the bytes are copied once, as they arrive); a larger
 * one is staged in Redis as it arrives ({@link stageBody}), so the gateway
 * holds a bounded window of it, never the whole. The errors are raw-body's
 * (413 `entity.too.large`, 400 `request.size.invalid`, `request.aborted`).
 */
export function readRunBody(
  req: IncomingMessage,
  res: ServerResponse,
  limit: number,
  staging: RunBodyStaging | undefined,
  done: RunBodyDone,
): void {
  const declared = req.headers['content-length'];
  const length = declared === undefined ? NaN : Number(declared);
  const expected = Number.isSafeInteger(length) && length >= 0 ? length : null;
  if (expected !== null && expected > limit) {
    done(clientError(413, 'entity.too.large', 'request entity too large'));
    return;
  }
  if (staging && expected !== null && expected > staging.aboveBytes) {
    stageBody(req, res, expected, staging.uploads, done);
    return;
  }
  const validator = new RunBodyValidator();
  let body = expected === null ? null : Buffer.allocUnsafe(expected);
  const chunks: Buffer[] = [];
  let received = 0;
  let settled = false;
  const finish = (err?: Error) => {
    if (settled) return;
    settled = true;
    bodyEvents(req, events, 'off');
    if (err) {
      req.resume(); // drain what is left, so the answer can be read
      done(err);
      return;
    }
    done(null, { raw: body ?? Buffer.concat(chunks, received), meta: validator.result() });
  };
  const onData = (chunk: Buffer) => {
    if (received + chunk.length > (expected ?? limit)) {
      finish(
        expected === null ? clientError(413, 'entity.too.large', 'request entity too large') : sizeMismatch(),
      );
      return;
    }
    if (body) chunk.copy(body, received);
    else chunks.push(chunk);
    received += chunk.length;
    validator.write(chunk);
  };
  const onEnd = () => {
    if (expected !== null && received !== expected) {
      finish(sizeMismatch());
      return;
    }
    finish();
  };
  const events: BodyEvents = {
    data: onData,
    end: onEnd,
    error: (err) => finish(err),
    aborted: () => {
      body = null;
      finish(clientError(400, 'request.aborted', 'request aborted'));
    },
  };
  bodyEvents(req, events, 'on');
}

/**
 * {@link readRunBody} as Express middleware: the body goes into `req.body`
 * (raw bytes) or `res.locals.stagedRunBody`, the verdict into
 * `res.locals.runBodyMeta`. A compressed body (IVIS-core sends none) goes
 * through `express.raw`, which inflates it; the validator then runs later
 * over the whole.
 */
export function runBodyReader(limit: number, staging?: RunBodyStaging): RequestHandler {
  const inflating = express.raw({ type: () => true, limit });
  return (req, res, next) => {
    if (!readsRunBody(req)) {
      inflating(req, res, next);
      return;
    }
    readRunBody(req, res, limit, staging, (err, body) => {
      if (err || !body) {
        next(err);
        return;
      }
      if (body.staged) res.locals.stagedRunBody = body.staged;
      else req.body = body.raw;
      res.locals.runBodyMeta = body.meta;
      next();
    });
  };
}

/**
 * Stages a body of `expected` bytes in Redis while it arrives: the socket
 * is paused while the upload's window of unacknowledged writes is full.
 * Every way out but success deletes the staging key (the TTL is the fallback
 * when the gateway dies); after the answer it is deleted too, a no-op once
 * the submit renamed it. The 400s are the buffered path's; a Redis failure
 * answers 503 `redis_unavailable` at once. A body the validator has no
 * verdict on is read back for the reference parser (rare: unusual or bad input).
 */
function stageBody(
  req: IncomingMessage,
  res: ServerResponse,
  expected: number,
  uploads: RunUploadStore,
  done: RunBodyDone,
) {
  const validator = new RunBodyValidator();
  const upload = uploads.begin(expected);
  res.once('close', () => upload.discard());
  let received = 0;
  let settled = false;
  let paused = false;
  const finish = (err: unknown, staged?: StagedRunBody, body?: Buffer) => {
    if (settled) return;
    settled = true;
    bodyEvents(req, events, 'off');
    upload.onDrain = () => undefined;
    if (err !== null) {
      upload.discard();
      req.resume(); // drain what is left, so the answer can be read
      done(redisUnavailableError(err) ?? (err instanceof Error ? err : new Error('run body upload failed')));
      return;
    }
    if (staged) {
      done(null, { staged, meta: validator.result() });
    } else {
      upload.discard();
      done(null, { raw: body ?? Buffer.alloc(0), meta: null });
    }
  };
  upload.onError = (err) => finish(err);
  upload.onDrain = () => {
    if (!paused) return;
    paused = false;
    req.resume();
  };
  const onData = (chunk: Buffer) => {
    if (received + chunk.length > expected) {
      finish(sizeMismatch());
      return;
    }
    received += chunk.length;
    validator.write(chunk);
    if (!upload.write(chunk) && !paused) {
      paused = true;
      req.pause();
    }
  };
  const onEnd = () => {
    if (received !== expected) {
      finish(sizeMismatch());
      return;
    }
    upload
      .end()
      .then(
        async (staged) => {
          if (validator.result() !== null) finish(null, staged);
          else finish(null, undefined, await upload.read());
        },
        (err: unknown) => finish(err),
      )
      .catch((err: unknown) => finish(err));
  };
  const events: BodyEvents = {
    data: onData,
    end: onEnd,
    error: (err) => finish(err),
    aborted: () => finish(clientError(400, 'request.aborted', 'request aborted')),
  };
  bodyEvents(req, events, 'on');
}
