import { AppError, parseRunId } from '@rps/common';

const ID_RULE = 'must be a non-negative decimal integer without sign or leading zeros';

/**
 * A numeric id from a path parameter, or a 400 naming the parameter. Task ids
 * follow the run id rule: one canonical spelling per id, so one Redis key.
 */
export function parseIdParam(name: 'run_id' | 'task_id', raw: string | string[] | undefined): number {
  const id = typeof raw === 'string' ? parseRunId(raw) : null;
  if (id === null) {
    throw new AppError('invalid_request', 400, `invalid ${name}`, [{ path: name, message: ID_RULE }]);
  }
  return id;
}
