import path from 'node:path';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { appError, errorHandler, type Logger } from '@rps/common';
import type { Queue } from 'bullmq';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import pino from 'pino';
import {
  SESSION_COOKIE,
  SESSION_TTL_MS,
  checkBearer,
  createSessionValue,
  readCookie,
  sessionCookie,
  verifySessionValue,
} from './dashboard-session';

/** The page's files (plain HTML, CSS and JS, no build step): `packages/remote-manager/static`, beside src/ and dist/. */
export const STATIC_DIR = path.resolve(__dirname, '../../static');

/** Where bull-board lives under the router's mount. */
export const QUEUES_PATH = '/queues';

export interface DashboardDeps {
  /** The BullMQ queues bull-board shows. */
  queues: readonly Queue[];
  /** bull-board without actions (retry, clean, promote, remove, add): manager.dashboard.actions false. */
  readOnly: boolean;
  /** Where the admin API is, as the page fetches it (`API_PREFIX`). */
  apiPrefix: string;
  /**
   * manager.token: checks the bearer header that opens a session and keys the
   * session cookie bull-board is reached with. Null (or absent): bull-board
   * answers 401 to everyone; the page itself still works against the API.
   */
  token?: string | null;
  /** Where the router is mounted, as the browser sees it: '' for '/' (the default). */
  mountPath?: string;
  /** Logs the router's refusals and failures (its own error handler answers them in the catalog's JSON). */
  logger?: Logger;
  /** Clock of the sessions' expiry (tests). */
  now?: () => number;
}

// The page may talk only to its own origin: nothing inline, no CDN (the
// machine may have no internet), no framing.
const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');
// bull-board's page styles itself inline and links Google's fonts: let the
// inline styles in and keep the fonts out (the browser makes no request for them).
const BOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'self'",
  "frame-ancestors 'none'",
].join('; ');

function securityHeaders(csp: string): RequestHandler {
  return (_req, res, next) => {
    res.setHeader('Content-Security-Policy', csp);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Frame-Options', 'DENY');
    next();
  };
}

const unauthorized = (message: string) => appError('unauthorized', message);
const forbidden = (message: string) => appError('forbidden', message);

/**
 * The dashboard (docs/remote-manager-dashboard.md): the page at `/` (open: it
 * holds no data; it asks for the token and reads the API with it), its files
 * under `/dashboard/`, the session that lets a browser into bull-board
 * (`POST|DELETE /dashboard/session`) and bull-board at `/queues`.
 */
export function createDashboardRouter(deps: DashboardDeps): express.Router {
  const mount = deps.mountPath ?? '';
  const queuesBase = `${mount}${QUEUES_PATH}`;
  const token = deps.token ?? null;
  const now = deps.now ?? Date.now;
  const router = express.Router();
  const page = securityHeaders(PAGE_CSP);

  router.get('/', page, (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.sendFile(path.join(STATIC_DIR, 'index.html'));
  });
  router.get('/dashboard/config.json', page, (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json({
      apiPrefix: `${mount}${deps.apiPrefix}`,
      queuesPath: `${queuesBase}/`,
      sessionPath: `${mount}/dashboard/session`,
      readOnly: deps.readOnly,
    });
  });
  router.use('/dashboard', page, express.static(STATIC_DIR, { index: false, maxAge: 0 }));

  router.post('/dashboard/session', page, (req, res, next) => {
    if (token === null) return next(unauthorized('the manager has no token: bull-board is closed'));
    const verdict = checkBearer(token, req.headers.authorization);
    if (verdict === 'missing') return next(unauthorized('a bearer token is required'));
    if (verdict === 'wrong') return next(forbidden('the bearer token is not valid'));
    res.setHeader(
      'Set-Cookie',
      sessionCookie(createSessionValue(token, now()), { path: queuesBase, secure: req.secure }),
    );
    res.json({ expiresInMs: SESSION_TTL_MS, queuesPath: `${queuesBase}/`, readOnly: deps.readOnly });
  });
  router.delete('/dashboard/session', page, (req, res) => {
    res.setHeader('Set-Cookie', sessionCookie(null, { path: queuesBase, secure: req.secure }));
    res.status(204).end();
  });

  const board = new ExpressAdapter();
  board.setBasePath(queuesBase);
  createBullBoard({
    queues: deps.queues.map(
      (q) => new BullMQAdapter(q, { readOnlyMode: deps.readOnly, allowRetries: !deps.readOnly }),
    ),
    serverAdapter: board,
    options: {
      uiConfig: {
        boardTitle: deps.readOnly ? 'RPS, read-only' : 'RPS queues',
        miscLinks: [{ text: 'Pool dashboard', url: `${mount}/` }],
      },
    },
  });
  router.use(
    QUEUES_PATH,
    securityHeaders(BOARD_CSP),
    boardGuard(token, queuesBase, mount, now),
    board.getRouter() as RequestHandler,
  );
  // The router answers its own errors: it may be mounted after the app's error handlers.
  router.use(errorHandler(deps.logger ?? pino({ level: 'silent' })));
  return router;
}

/**
 * Lets into bull-board a request with the right bearer header or a live
 * session cookie. A page request without either goes to the dashboard to sign
 * in; an API call gets 401/403. A cookie-borne change (bull-board's actions)
 * must come from this origin: SameSite=Strict already stops other sites, the
 * Origin check is the second lock.
 */
function boardGuard(
  token: string | null,
  queuesBase: string,
  mount: string,
  now: () => number,
): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (token === null) return next(unauthorized('the manager has no token: bull-board is closed'));
    const bearer = checkBearer(token, req.headers.authorization);
    if (bearer === 'ok') return next();
    if (bearer === 'wrong') return next(forbidden('the bearer token is not valid'));
    const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (cookie !== undefined && verifySessionValue(token, cookie, now())) {
      if (!['GET', 'HEAD'].includes(req.method) && !sameOrigin(req)) {
        return next(forbidden('a change through the dashboard session must come from the dashboard'));
      }
      return next();
    }
    if (req.method === 'GET' && !req.path.startsWith('/api/')) {
      // bull-board's page (and its deep links): sign in on the dashboard first.
      res.setHeader('Cache-Control', 'no-store');
      return res.redirect(303, `${mount}/?signin=${encodeURIComponent(queuesBase)}`);
    }
    return next(unauthorized('sign in on the dashboard (or send the bearer token) to use bull-board'));
  };
}

function sameOrigin(req: Request): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true; // not a browser's cross-origin request
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
