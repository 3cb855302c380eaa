import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
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
function bodyEvents(req: Request, events: BodyEvents, how: 'on' | 'off'): void {
  for (const name of ['data', 'end', 'error', 'aborted'] as const) req[how](name, events[name]);
}

/** Where large bodies go, and from which `content-length` on. */
export interface RunBodyStaging {
  uploads: RunUploadStore;
  /** A body declaring more bytes than this is staged in Redis as it arrives. */
  aboveBytes: number;
}

/**
 * Reads a run body as raw bytes whatever the content type, and runs the
 * one-pass validator over each chunk on the way, so a large archive is
 * checked while it uploads and never turned into a string or an array of
 * numbers. A body of up to `staging.aboveBytes` goes into one buffer sized
 * by `content-length` (the bytes are copied once, as they arrive); a larger
 * one is staged in Redis as it arrives ({@link stageBody}), so the gateway
 * holds a bounded window of it, never the whole. A compressed body
 * (IVIS-core sends none) goes through `express.raw`, which inflates it; the
 * validator then runs later over the whole.
 */
export function runBodyReader(limit: number, staging?: RunBodyStaging): RequestHandler {
  const inflating = express.raw({ type: () => true, limit });
  return (req, res, next) => {
    const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (encoding !== 'identity') {
      inflating(req, res, next);
      return;
    }
    const declared = req.headers['content-length'];
    const length = declared === undefined ? NaN : Number(declared);
    const expected = Number.isSafeInteger(length) && length >= 0 ? length : null;
    if (expected !== null && expected > limit) {
      next(clientError(413, 'entity.too.large', 'request entity too large'));
      return;
    }
    if (staging && expected !== null && expected > staging.aboveBytes) {
      stageBody(req, res, next, expected, staging.uploads);
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
        next(err);
        return;
      }
      req.body = body ?? Buffer.concat(chunks, received);
      res.locals.runBodyMeta = validator.result();
      next();
    };
    const onData = (chunk: Buffer) => {
      if (received + chunk.length > (expected ?? limit)) {
        finish(
          expected === null
            ? clientError(413, 'entity.too.large', 'request entity too large')
            : sizeMismatch(),
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
  req: Request,
  res: Response,
  next: NextFunction,
  expected: number,
  uploads: RunUploadStore,
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
      next(redisUnavailableError(err) ?? err);
      return;
    }
    if (staged) {
      res.locals.stagedRunBody = staged;
      res.locals.runBodyMeta = validator.result();
    } else {
      upload.discard();
      req.body = body;
      res.locals.runBodyMeta = null;
    }
    next();
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
