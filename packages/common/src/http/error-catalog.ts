import { AppError, type ErrorDetail } from './app-error';

/** One catalog entry: a stable code, its HTTP status and the default message. */
export interface ErrorEntry {
  readonly code: string;
  readonly status: number;
  readonly message: string;
}

/**
 * The error catalog (STYLE.md rule 13): codes services answer with, each with
 * its status and default message, documented in docs/errors.md (a test checks
 * that the two agree). Codes not here yet are still thrown as free AppErrors;
 * they move here as their code is touched.
 */
export const ERRORS = Object.freeze({
  clientCertificateRequired: {
    code: 'client_certificate_required',
    status: 401,
    message: 'a client certificate is required',
  },
  certificateRevoked: {
    code: 'certificate_revoked',
    status: 401,
    message: 'the client certificate is revoked',
  },
  revocationCheckUnavailable: {
    code: 'revocation_check_unavailable',
    status: 503,
    message: 'the client certificate cannot be checked against the revocation list now',
  },
  clientNotAllowed: {
    code: 'client_not_allowed',
    status: 403,
    message: 'this client certificate is not one of the clients allowed here',
  },
} satisfies Record<string, ErrorEntry>);

/** The AppError of a catalog entry; `message` replaces the default when the answer should say more. */
export function appError(entry: ErrorEntry, message = entry.message, details: ErrorDetail[] = []): AppError {
  return new AppError(entry.code, entry.status, message, details);
}
