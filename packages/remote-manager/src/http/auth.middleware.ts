import { createHash, timingSafeEqual } from 'node:crypto';
import { appError } from '@rps/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * Lets a request through when it carries `Authorization: Bearer <token>`:
 * 401 `unauthorized` without the header (or another scheme), 403 `forbidden`
 * with another token. Both sides are hashed first so the comparison is
 * constant-time whatever the length of what was sent.
 */
export function bearerAuth(token: string): RequestHandler {
  const expected = digest(token);
  return (req: Request, _res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? BEARER.exec(header) : null;
    if (!match?.[1]) {
      next(appError('unauthorized'));
      return;
    }
    next(timingSafeEqual(digest(match[1]), expected) ? undefined : appError('forbidden'));
  };
}
