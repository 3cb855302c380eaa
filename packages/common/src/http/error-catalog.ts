import { AppError, type ErrorDetail } from './app-error';

/** One entry of {@link ERRORS}: the HTTP status and the default message of a code. */
export interface CatalogEntry {
  status: number;
  message: string;
  /** Seconds for the `Retry-After` header (every 503 carries one; this overrides the default). */
  retryAfterS?: number;
}

/**
 * The error catalog (STYLE.md rule 13): every stable error code an RPS HTTP
 * answer can carry, with its status and default message. docs/errors.md
 * lists the same codes (a test ties the two together), so a client or an
 * operator can look a code up. Services throw {@link appError} with a code
 * from here instead of free strings.
 */
export const ERRORS = {
  invalid_request: { status: 400, message: 'invalid request' },
  invalid_json: { status: 400, message: 'request body is not valid JSON' },
  bad_request: { status: 400, message: 'bad request' },
  'entity.parse.failed': { status: 400, message: 'request body is not valid JSON' },
  'entity.too.large': { status: 413, message: 'request body is larger than the configured limit' },
  client_certificate_required: { status: 401, message: 'a client certificate is required' },
  certificate_revoked: { status: 401, message: 'the client certificate is revoked' },
  client_not_allowed: {
    status: 403,
    message: 'this client certificate is not one of the clients allowed here',
  },
  unauthorized: { status: 401, message: 'an Authorization: Bearer <manager.token> header is required' },
  forbidden: { status: 403, message: 'the token is not the manager token' },
  not_found: { status: 404, message: 'no such route' },
  machine_not_found: { status: 404, message: 'machine not found' },
  peer_not_found: { status: 404, message: 'peer not found' },
  client_not_found: { status: 404, message: 'allowed client not found' },
  machine_name_taken: { status: 409, message: 'a machine with this name exists' },
  machine_removed: { status: 409, message: 'the machine is removed' },
  run_not_found: { status: 404, message: 'run not found' },
  revocation_check_unavailable: {
    status: 503,
    message: 'the client certificate cannot be checked against the revocation list now',
  },
  redis_unavailable: { status: 503, message: 'Redis is unavailable; try again', retryAfterS: 1 },
  run_busy: { status: 503, message: 'the run kept changing state; try again' },
  stop_not_acknowledged: { status: 503, message: 'the peer did not acknowledge the stop in time' },
  stop_failed: { status: 503, message: 'the peer could not stop the run' },
  // remote-manager's local CA (docs/remote-manager-ca.md)
  bad_ca_files: { status: 400, message: 'the CA certificate or key cannot be used' },
  certificate_not_found: { status: 404, message: 'no certificate with this serial' },
  ca_not_initialised: { status: 409, message: 'no CA in the CA directory: initialise or import one' },
  ca_exists: { status: 409, message: 'the CA directory already holds a CA' },
  certificate_not_revocable: { status: 409, message: 'this certificate cannot be revoked here' },
  internal: { status: 500, message: 'internal error' },
} as const satisfies Record<string, CatalogEntry>;

/** A code of the catalog. */
export type ErrorCode = keyof typeof ERRORS;

/** `Retry-After` (seconds) of a 503 whose catalog entry names none. */
export const DEFAULT_RETRY_AFTER_S = 1;

/** Builds the {@link AppError} of a catalog code, with an optional specific message and details. */
export function appError(code: ErrorCode, message?: string, details: readonly ErrorDetail[] = []): AppError {
  const entry: CatalogEntry = ERRORS[code];
  return new AppError(code, entry.status, message ?? entry.message, details);
}

/** The `Retry-After` seconds for an answer: the catalog's value for 503s, else undefined. */
export function retryAfterFor(code: string, status: number): number | undefined {
  if (status !== 503) return undefined;
  const entry = (ERRORS as Record<string, CatalogEntry>)[code];
  return entry?.retryAfterS ?? DEFAULT_RETRY_AFTER_S;
}
