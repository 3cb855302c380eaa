import { createHash, timingSafeEqual, X509Certificate } from 'node:crypto';
import { TLSSocket } from 'node:tls';
import { appError, certificateIdentity, type ClientIdentity } from '@rps/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** How /api requests authenticate: the bearer token, and/or (on HTTPS) a named client certificate. */
export interface AuthOptions {
  /** manager.token; null: only client certificates get in. */
  token: string | null;
  /** manager.tls.clients: certificates of manager.tls.ca that get in without a token. */
  clients?: readonly ClientIdentity[];
  /** Whether a certificate (decimal serial) is in the revoked set; a revoked one is refused. */
  isRevoked?: (decimalSerial: string) => Promise<boolean>;
}

/** The name of the allowed client certificate the request came with, or null. */
function clientName(
  req: Request,
  clients: readonly ClientIdentity[],
): { name: string; serial: string } | null {
  const socket = req.socket;
  if (clients.length === 0 || !(socket instanceof TLSSocket) || !socket.authorized) return null;
  const raw = socket.getPeerCertificate()?.raw;
  if (!raw) return null;
  const id = certificateIdentity(new X509Certificate(raw));
  const match = clients.find((c) =>
    'fingerprint256' in c
      ? c.fingerprint256 === id.fingerprint256
      : c.serial === id.serial && c.issuer === id.issuer,
  );
  return match ? { name: match.name, serial: id.serial } : null;
}

/**
 * Lets a request through when it carries a client certificate named in
 * `clients` (not revoked), or `Authorization: Bearer <token>`: 401
 * `unauthorized` without either, 403 `forbidden` with another token. Tokens
 * are hashed first so the comparison is constant-time whatever was sent.
 */
export function managerAuth(options: AuthOptions): RequestHandler {
  const expected = options.token === null ? null : digest(options.token);
  const clients = options.clients ?? [];
  return async (req: Request, _res: Response, next: NextFunction) => {
    const client = clientName(req, clients);
    if (client) {
      if (await options.isRevoked?.(client.serial)) throw appError('certificate_revoked');
      req.log?.debug({ client: client.name }, 'client certificate accepted');
      next();
      return;
    }
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? BEARER.exec(header) : null;
    if (!match?.[1] || expected === null) {
      throw appError(
        'unauthorized',
        expected === null ? 'a client certificate named in manager.tls.clients is required' : undefined,
      );
    }
    if (!timingSafeEqual(digest(match[1]), expected)) throw appError('forbidden');
    next();
  };
}
