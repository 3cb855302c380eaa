import { AppError } from '@rps/common';
import { parseIdParam } from './params';

describe('parseIdParam', () => {
  it('when the id is canonical decimal then it is returned as a number', () => {
    expect(parseIdParam('run_id', '42')).toBe(42);
    expect(parseIdParam('task_id', '0')).toBe(0);
  });

  it('when the parameter is missing or repeated then it is a 400 too', () => {
    for (const raw of [undefined, ['1', '2'], ['5']])
      expect(() => parseIdParam('run_id', raw)).toThrow(
        expect.objectContaining({ message: 'invalid run_id' }) as Error,
      );
  });

  it.each(['042', '-1', '4.2', '1e3', 'abc', '', '99999999999999999999'])(
    'when the id is %p then a 400 names the parameter',
    (raw) => {
      let caught: unknown;
      try {
        parseIdParam('task_id', raw);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(AppError);
      expect(caught).toMatchObject({
        status: 400,
        code: 'invalid_request',
        message: 'invalid task_id',
        details: [
          {
            path: 'task_id',
            message: 'must be a non-negative decimal integer without sign or leading zeros',
          },
        ],
      });
    },
  );
});
