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
    expect(err).toMatchObject({ status: 400, code: 'invalid_json' });
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

  it('when the body is a JSON array then it is refused', () => {
    expect(rejection(raw([valid])).code).toBe('invalid_request');
  });
});
