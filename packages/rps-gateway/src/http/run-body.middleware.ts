import express, { type RequestHandler } from 'express';
import { RunBodyValidator } from '../services/run-body.validator';
import type { RunRequestMeta } from '../services/run-request.parser';

declare module 'express-serve-static-core' {
  interface Locals {
    /** The one-pass validator's verdict on the body, read while it arrived (null: ask the reference). */
    runBodyMeta?: RunRequestMeta | null;
  }
}

/** The error raw-body gives, so the error middleware answers it the same way (413 `entity.too.large`). */
function clientError(status: number, type: string, message: string): Error {
  return Object.assign(new Error(message), { status, statusCode: status, type, expose: true });
}

/**
 * Reads a run body as raw bytes whatever the content type, into one buffer
 * sized by `content-length` (the bytes are copied once, as they arrive), and
 * runs the one-pass validator over each chunk on the way, so a large archive
 * is checked while it uploads and never turned into a string or an array of
 * numbers. Memory in flight is the body itself plus a socket chunk. A
 * compressed body (IVIS-core sends none) goes through `express.raw`, which
 * inflates it; the validator then runs later over the whole.
 */
export function runBodyReader(limit: number): RequestHandler {
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
    const validator = new RunBodyValidator();
    let body = expected === null ? null : Buffer.allocUnsafe(expected);
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
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
            : clientError(400, 'request.size.invalid', 'request size did not match content length'),
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
        finish(clientError(400, 'request.size.invalid', 'request size did not match content length'));
        return;
      }
      finish();
    };
    const onError = (err: Error) => finish(err);
    const onAborted = () => {
      body = null;
      finish(clientError(400, 'request.aborted', 'request aborted'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  };
}
