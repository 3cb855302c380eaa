/**
 * The one error type services throw on purpose: a stable string code clients
 * and tests can rely on, the HTTP status to answer with, and optional details.
 */
export class AppError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly details: readonly ErrorDetail[] = [],
  ) {
    super(message);
    this.name = 'AppError';
  }
}

/** One entry of an error body's `details`: where (dotted path) and what. */
export interface ErrorDetail {
  path: string;
  message: string;
}

/** The JSON body of every error answer. */
export interface ErrorBody {
  error: string;
  code: string;
  details: ErrorDetail[];
}
