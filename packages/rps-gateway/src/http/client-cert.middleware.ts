import type { X509Certificate } from 'node:crypto';
import type { RequestHandler } from 'express';
import {
  appError,
  certificateIdentity,
  redisUnavailableError,
  type CertificateIdentity,
  type Logger,
} from '@rps/common';
import type { ClientVerdict } from '../services/client-allow-list.service';

/** What the guard reads from the connection; a TLSSocket has it. */
interface PeerCertificateSource {
  getPeerX509Certificate?: () => X509Certificate | undefined;
}

/** What the guard needs. */
export interface ClientCertGuardOptions {
  isRevoked: (decimalSerial: string) => Promise<boolean>;
  /** Who may in (`gateway.clients` plus the runtime list); asked on every request. */
  identify: (identity: CertificateIdentity) => ClientVerdict;
  /** How long one connection's "not revoked" verdict holds before it is checked again. */
  recheckMs: number;
  now?: () => number;
}

interface ConnectionState {
  identity: CertificateIdentity;
  revoked: boolean;
  checkedAt: number;
  /** A refusal was logged for this connection (one warn line per connection, not per request). */
  warned: boolean;
}

declare module 'express-serve-static-core' {
  interface Locals {
    /** Set by {@link clientCertGuard}: the allowed client's name (null: admitted by allowAnyClientOfCa). */
    client?: string | null;
  }
}

/** Who a connection's certificate was admitted as. */
export interface ClientAdmission {
  /** The allowed client's name (null: admitted by allowAnyClientOfCa). */
  name: string | null;
  identity: CertificateIdentity;
}

/**
 * Checks a request's connection; throws the refusal as an AppError. Answers
 * synchronously while the connection's revocation verdict holds (the common
 * case: keep-alive clients send many requests on one), else a promise.
 * `log` is asked only when there is something to log.
 */
export type ClientCertCheck = (
  socket: object,
  log: () => Logger,
) => ClientAdmission | Promise<ClientAdmission>;

/**
 * What the handshake cannot decide (it already checked the chain, validity
 * and the clientAuth purpose): a certificate whose serial is revoked gets 401,
 * one that is not an allowed client (an executor's certificate of the same CA)
 * 403 and a warn line naming it. The revocation verdict is kept per
 * connection (keep-alive clients send many requests on one) and rechecked
 * after `recheckMs`; it fails closed with 503 if the list cannot be read. The
 * allow-list is asked on every request, so a removal reaches open
 * connections too.
 */
export function clientCertCheck({
  isRevoked,
  identify,
  recheckMs,
  now = Date.now,
}: ClientCertGuardOptions): ClientCertCheck {
  const connections = new WeakMap<object, ConnectionState>();

  const refresh = async (socket: object, state: ConnectionState | undefined) => {
    const certificate = (socket as PeerCertificateSource).getPeerX509Certificate?.();
    if (!certificate) throw appError('client_certificate_required');
    const identity = state?.identity ?? certificateIdentity(certificate);
    let revoked: boolean;
    try {
      revoked = await isRevoked(identity.serial);
    } catch (err) {
      // Redis down answers as on every other route (503 redis_unavailable, docs/gateway.md),
      // whether or not this connection's verdict happened to be due; anything else names the check.
      throw redisUnavailableError(err) ?? appError('revocation_check_unavailable');
    }
    const fresh = { identity, revoked, checkedAt: now(), warned: state?.warned ?? false };
    connections.set(socket, fresh);
    return fresh;
  };

  const admit = (state: ConnectionState, log: () => Logger): ClientAdmission => {
    const { identity } = state;
    if (state.revoked) {
      throw appError('certificate_revoked', `client certificate ${identity.serial} is revoked`);
    }
    const verdict = identify(identity);
    if (!verdict.allowed) {
      if (!state.warned) {
        state.warned = true;
        log().warn(
          {
            client: {
              subject: identity.subject,
              serial: identity.serial,
              fingerprint256: identity.fingerprint256,
              issuer: identity.issuer.replace(/\n/g, ', '),
            },
          },
          'client certificate not allowed',
        );
      }
      throw appError(
        'client_not_allowed',
        `client certificate ${identity.fingerprint256} (${identity.subject}) is not an allowed client`,
      );
    }
    return { name: verdict.name, identity };
  };

  return (socket, log) => {
    const state = connections.get(socket);
    if (state !== undefined && now() - state.checkedAt < recheckMs) return admit(state, log);
    return refresh(socket, state).then((fresh) => admit(fresh, log));
  };
}

/** What an admitted client adds to a request's log lines. */
export function clientLogBindings({ name, identity }: ClientAdmission): Record<string, string | null> {
  return name === null ? { client: null, clientSubject: identity.subject } : { client: name };
}

/**
 * {@link clientCertCheck} as Express middleware (given the check itself, it
 * shares the check's verdicts per connection): the client's name goes into
 * `res.locals.client` and the request's log lines.
 */
export function clientCertGuard(options: ClientCertGuardOptions | ClientCertCheck): RequestHandler {
  const check = typeof options === 'function' ? options : clientCertCheck(options);
  return async (req, res, next) => {
    const admitted = await check(req.socket, () => req.log);
    res.locals.client = admitted.name;
    req.log = req.log.child(clientLogBindings(admitted));
    next();
  };
}
