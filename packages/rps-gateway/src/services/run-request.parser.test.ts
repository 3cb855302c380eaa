import { AppError } from '@rps/common';
import { parseRunRequest } from './run-request.parser';

const valid = {
  params: {},
  entities: { signalSets: {}, signals: {} },
  owned: { signalSets: {} },
  type: 'python',
  codeArchive: { type: 'Buffer', data: [46, 47, 0] },
  accessToken: 'tok',
  state: null,
  jobId: 5,
  runId: 42,
  taskId: 7,
};
const raw = (value: unknown) => Buffer.from(JSON.stringify(value));

function rejection(body: Buffer): AppError {
  try {
    parseRunRequest(body);
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('parseRunRequest', () => {
  it('when the body is TV1 then task and job ids come back as numbers', () => {
    expect(parseRunRequest(raw(valid))).toEqual({ taskId: 7, jobId: 5 });
  });

  it('when ids are digit strings (accepted by the RJR) then they are read as numbers', () => {
    expect(parseRunRequest(raw({ ...valid, taskId: '7', jobId: '05' }))).toEqual({ taskId: 7, jobId: 5 });
  });

  it('when the body is not JSON then it is a 400 invalid_json', () => {
    const err = rejection(Buffer.from('{"params":'));
    expect(err).toMatchObject({
      status: 400,
      code: 'invalid_json',
      message: 'request body is not valid JSON',
    });
    // The detail carries JSON.parse's own words, so a caller sees where it broke.
    expect(err.details).toEqual([{ path: '(body)', message: expect.stringMatching(/JSON/) as string }]);
  });

  it('when the body is JSON of the wrong shape then the message says which body', () => {
    expect(rejection(raw({ ...valid, type: 1 })).message).toBe('invalid run request body');
  });

  it('when state is absent then the detail names state', () => {
    const { state: _state, ...rest } = valid;
    const err = rejection(raw(rest));
    expect(err.status).toBe(400);
    expect(err.details.map((d) => d.path)).toEqual(['state']);
  });

  it('when an archive byte is out of range then the detail names its index', () => {
    const err = rejection(raw({ ...valid, codeArchive: { type: 'Buffer', data: [1, 256] } }));
    expect(err.details[0]?.path).toBe('codeArchive.data.1');
  });

  it('when a Buffer archive holds no array or a long string then the detail says what was wrong', () => {
    expect(rejection(raw({ ...valid, codeArchive: { type: 'Buffer', data: 'x' } })).details).toEqual([
      { path: 'codeArchive.data', message: 'codeArchive.data must be an array of bytes' },
    ]);
    const long = 'a'.repeat(21);
    expect(rejection(raw({ ...valid, codeArchive: { type: 'Buffer', data: [1, long] } })).details).toEqual([
      {
        path: 'codeArchive.data.1',
        message: `codeArchive.data[1] must be an integer 0..255, got "${'a'.repeat(20)}…"`,
      },
    ]);
    expect(
      rejection(raw({ ...valid, codeArchive: { type: 'Buffer', data: [null] } })).details[0]?.message,
    ).toMatch(/got null$/);
  });

  it('when the body is a JSON array then it is refused', () => {
    expect(rejection(raw([valid])).code).toBe('invalid_request');
  });
});
