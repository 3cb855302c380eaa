import {
  RequestType,
  emitPushSchema,
  jobRequestLineSchema,
  parseRunId,
  runIdFromEventType,
  runRequestBodySchema,
  runRequestPushSchema,
  runStatusResponseSchema,
  statusPushSchema,
} from './ivis.schemas';

/** TV1, as IVIS-core sends it (no subtype). */
function tv1Body(): Record<string, unknown> {
  return {
    params: {},
    entities: { signalSets: {}, signals: {} },
    owned: { signalSets: {} },
    type: 'python',
    codeArchive: { type: 'Buffer', data: [46, 47, 0, 0, 0, 0, 0, 0] },
    accessToken: 'tok',
    state: null,
    jobId: 5,
    runId: 42,
    taskId: 7,
  };
}

function issuePaths(result: { success: boolean; error?: { issues: { path: PropertyKey[] }[] } }): string[] {
  return (result.error?.issues ?? []).map((issue) => issue.path.map(String).join('.'));
}

function messages(result: { error?: { issues: { message: string }[] } }): string {
  return (result.error?.issues ?? []).map((issue) => issue.message).join('\n');
}

describe('runRequestBodySchema', () => {
  it('when TV1 is parsed then it passes and keeps every field', () => {
    const result = runRequestBodySchema.safeParse(tv1Body());
    expect(result.success).toBe(true);
    expect(result.data).toEqual(tv1Body());
    expect(result.data).not.toHaveProperty('subtype');
  });

  it('when the body has unknown fields then they come out byte-for-byte', () => {
    const extra = { nested: { a: [1, 'two', null, { b: true }] }, 'weird key': 'é\u0000', n: 1.5e300 };
    const body = { ...tv1Body(), ...extra };
    const parsed = runRequestBodySchema.parse(JSON.parse(JSON.stringify(body)));
    for (const [key, value] of Object.entries(extra)) {
      expect(JSON.stringify((parsed as Record<string, unknown>)[key])).toBe(JSON.stringify(value));
    }
  });

  it('when ids are strings of digits and subtype is a string then it passes', () => {
    const body = { ...tv1Body(), taskId: '7', jobId: '5', subtype: 'numpy' };
    expect(runRequestBodySchema.safeParse(body).success).toBe(true);
  });

  it.each([
    ['taskId', 'abc'],
    ['taskId', 7.5],
    ['taskId', undefined],
    ['jobId', '5a'],
    ['jobId', null],
    ['type', 3],
    ['subtype', 3],
    ['codeArchive', 'tar'],
  ])('when %s is %p then it fails naming %s', (key, value) => {
    const body = { ...tv1Body(), [key]: value };
    const result = runRequestBodySchema.safeParse(body);
    expect(result.success).toBe(false);
    expect(issuePaths(result)[0]).toBe(key);
  });

  it.each(['params', 'entities', 'owned', 'accessToken', 'state'])(
    'when the %s key is missing then it fails naming it',
    (key) => {
      const body = tv1Body();
      delete body[key];
      const result = runRequestBodySchema.safeParse(body);
      expect(result.success).toBe(false);
      expect(issuePaths(result)).toEqual([key]);
      expect(messages(result)).toBe('required (may be null)');
    },
  );

  it.each(['params', 'entities', 'owned', 'accessToken', 'state'])(
    'when %s is null then it passes',
    (key) => {
      expect(runRequestBodySchema.safeParse({ ...tv1Body(), [key]: null }).success).toBe(true);
    },
  );

  it('when codeArchive has no data then it fails naming codeArchive.data', () => {
    const result = runRequestBodySchema.safeParse({ ...tv1Body(), codeArchive: { type: 'Buffer' } });
    expect(issuePaths(result)).toEqual(['codeArchive.data']);
  });

  it('when codeArchive.type is not a string then it fails naming codeArchive.type', () => {
    const result = runRequestBodySchema.safeParse({ ...tv1Body(), codeArchive: { type: 1, data: [] } });
    expect(issuePaths(result)).toEqual(['codeArchive.type']);
  });

  it.each([
    [300, '300'],
    [-1, '-1'],
    [1.5, '1.5'],
    ['x', '"x"'],
    [null, 'null'],
    [true, 'boolean'],
    [{ a: 1 }, 'object'],
    ['x'.repeat(20), `"${'x'.repeat(20)}"`],
    ['y'.repeat(21), `"${'y'.repeat(20)}…"`],
  ])('when codeArchive.data holds %p then it fails naming the index', (bad, shown) => {
    const data: unknown[] = [1, 2, 3, bad, 4, 'also bad'];
    const result = runRequestBodySchema.safeParse({ ...tv1Body(), codeArchive: { type: 'Buffer', data } });
    expect(result.success).toBe(false);
    expect(issuePaths(result)).toEqual(['codeArchive.data.3']);
    expect(messages(result)).toBe(`codeArchive.data[3] must be an integer 0..255, got ${shown}`);
  });

  it('when a Buffer archive has non-array data then it fails naming codeArchive.data', () => {
    const result = runRequestBodySchema.safeParse({
      ...tv1Body(),
      codeArchive: { type: 'Buffer', data: 'AAAA' },
    });
    expect(issuePaths(result)).toEqual(['codeArchive.data']);
    expect(messages(result)).toBe('codeArchive.data must be an array of bytes');
  });

  it('when the archive is not a Buffer then any present data passes, as in the RJR', () => {
    const body = { ...tv1Body(), codeArchive: { type: 'base64', data: 'AAAA' } };
    expect(runRequestBodySchema.safeParse(body).success).toBe(true);
  });

  it('when the archive holds 5 million bytes then it validates and keeps the same array', () => {
    const data = new Array<number>(5_000_000);
    for (let i = 0; i < data.length; i++) data[i] = i & 255;
    const parsed = runRequestBodySchema.parse({ ...tv1Body(), codeArchive: { type: 'Buffer', data } });
    expect(parsed.codeArchive.data).toBe(data);
    data[4_999_999] = 256;
    const result = runRequestBodySchema.safeParse({ ...tv1Body(), codeArchive: { type: 'Buffer', data } });
    expect(issuePaths(result)).toEqual(['codeArchive.data.4999999']);
  });
});

describe('runStatusResponseSchema', () => {
  it('when TV3 running and final answers are parsed then they pass unchanged', () => {
    const running = { status: 3, output: 'step 1\n', error: '' };
    const final = { status: 0, output: 'step 1\ndone\n', error: '', finished_at: '2023-07-13T21:55:21.123Z' };
    expect(runStatusResponseSchema.parse(running)).toEqual(running);
    expect(runStatusResponseSchema.parse(final)).toEqual(final);
  });

  it('when finished_at carries an offset then it passes, since it is still ISO-8601', () => {
    const final = { status: 2, output: '', error: 'x', finished_at: '2023-07-13T23:55:21.123+02:00' };
    expect(runStatusResponseSchema.parse(final)).toEqual(final);
  });

  it.each([
    [{ status: 1, output: '', error: '' }, 'status'],
    [{ status: 3, error: '' }, 'output'],
    [{ status: 3, output: '' }, 'error'],
    [{ status: 0, output: '', error: '', finished_at: 'yesterday' }, 'finished_at'],
    [{ status: 0, output: '', error: '', finished_at: null }, 'finished_at'],
  ])('when %p is checked then it fails naming %s', (value, path) => {
    expect(issuePaths(runStatusResponseSchema.safeParse(value))).toEqual([path]);
  });
});

describe('statusPushSchema', () => {
  it('when TV8a RUNNING is parsed then it passes', () => {
    expect(statusPushSchema.parse({ runId: 42, status: { status: 3 } })).toEqual({
      runId: 42,
      status: { status: 3 },
    });
  });

  it('when TV8b SUCCESS with extra status fields is parsed then everything is kept', () => {
    const push = {
      runId: 42,
      status: {
        started_at: '2023-07-13T21:55:01.000Z',
        finished_at: '2023-07-13T21:55:21.123Z',
        status: 0,
        errors: 'old RJR',
      },
      output: 'step 1\ndone\n',
    };
    expect(statusPushSchema.parse(push)).toEqual(push);
  });

  it('when TV11 pushes status 1 then it fails naming status.status', () => {
    const result = statusPushSchema.safeParse({ runId: 42, status: { status: 1 } });
    expect(issuePaths(result)).toEqual(['status.status']);
  });

  it.each([
    [{ runId: 42, status: 3 }, 'status'],
    [{ runId: 42 }, 'status'],
    [{ status: { status: 3 } }, 'runId'],
    [{ runId: '42', status: { status: 3 } }, 'runId'],
    [{ runId: 42, status: { status: 3 }, output: ['x'] }, 'output'],
  ])('when %p is pushed then it fails naming %s', (push, path) => {
    expect(issuePaths(statusPushSchema.safeParse(push))).toEqual([path]);
  });
});

describe('emitPushSchema and runIdFromEventType', () => {
  it.each([
    [{ type: 'run/42/output', data: ['step 1\n', 'step 2\n'] }, 42],
    [{ type: 'run/42/success' }, 42],
    [{ type: 'access_token_refresh', data: { runId: 42, jobId: 5, accessToken: 'tok' } }, null],
    [{ type: 'run/undefined/fail', data: 'Cancelled upon start' }, null],
  ])('when TV9 emit %p is parsed then it passes and its run id is %p', (push, runId) => {
    expect(emitPushSchema.parse(push)).toEqual(push);
    expect(runIdFromEventType(push.type)).toBe(runId);
  });

  it.each([[{}], [{ type: '' }], [{ type: 3 }]])('when %p is emitted then it fails naming type', (push) => {
    expect(issuePaths(emitPushSchema.safeParse(push))).toEqual(['type']);
  });

  it.each([
    ['run/7/stop', 7],
    ['run/0/output', 0],
    ['run/42', null],
    ['run/42/', null],
    ['run//fail', null],
    ['run/042/fail', null],
    ['run/-1/fail', null],
    ['xrun/42/fail', null],
    ['job/42/fail', null],
  ])('when the event type is %p then the run id is %p', (type, runId) => {
    expect(runIdFromEventType(type)).toBe(runId);
  });
});

describe('runRequestPushSchema', () => {
  it('when TV10 STORE_STATE is parsed then the request passes through', () => {
    const push = { type: 1, payload: { jobId: 5, request: { type: 'store_state', state: { last: 123 } } } };
    expect(runRequestPushSchema.parse(push)).toEqual(push);
  });

  it('when TV10 CREATE_SIG is parsed then the signal spec passes through', () => {
    const push = {
      type: 0,
      payload: {
        jobId: 5,
        signalSets: { cid: 'out', namespace: 1, signals: [{ cid: 'v', type: 'double', namespace: 1 }] },
      },
    };
    expect(runRequestPushSchema.parse(push)).toEqual(push);
  });

  it('when the request types are read then they match shared/remote-run.js', () => {
    expect(RequestType).toEqual({ CREATE_SIG: 0, STORE_STATE: 1 });
  });

  it.each([
    [{ type: 2, payload: { jobId: 5 } }, 'type'],
    [{ payload: { jobId: 5 } }, 'type'],
    [{ type: 1 }, 'payload'],
    [{ type: 1, payload: {} }, 'payload.jobId'],
    [{ type: 1, payload: { jobId: 'five' } }, 'payload.jobId'],
  ])('when %p is pushed then it fails naming %s', (push, path) => {
    expect(issuePaths(runRequestPushSchema.safeParse(push))).toEqual([path]);
  });
});

describe('jobRequestLineSchema', () => {
  it.each([
    [{ type: 'store_state', state: { last: 123 } }],
    [{ type: 'store_state', state: { last: 123 }, id: 'r1' }],
    [{ type: 'create_signals', signalSets: { cid: 'out' } }],
    [{ type: 'create_signals', signals: { out: [{ cid: 'v' }] }, id: 3 }],
  ])('when the job writes %p then it passes unchanged', (line) => {
    expect(jobRequestLineSchema.parse(line)).toEqual(line);
  });

  it.each([
    [{ type: 'store_state' }, 'state'],
    [{ type: 'store_state', state: null }, 'state'],
    [{ type: 'store_state', state: 0 }, 'state'],
    [{ type: 'create_signals' }, 'signalSets'],
    [{ type: 'create_signals', id: 1, signals: null }, 'signalSets'],
    [{ type: 'delete_everything' }, 'type'],
    [{ state: {} }, 'type'],
  ])('when the job writes %p then it fails naming %s', (line, path) => {
    expect(issuePaths(jobRequestLineSchema.safeParse(line))).toEqual([path]);
  });
});

describe('parseRunId', () => {
  it.each([
    ['42', 42],
    ['0', 0],
    [String(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER],
  ])('when the parameter is %p then the id is %p', (raw, id) => {
    expect(parseRunId(raw)).toBe(id);
  });

  it.each([
    '042',
    '4.2',
    '-1',
    '+1',
    '1e3',
    '',
    'abc',
    ' 42',
    '42 ',
    '0x2a',
    '9007199254740992',
    '1'.repeat(400),
  ])('when the parameter is %p then it is refused', (raw) => {
    expect(parseRunId(raw)).toBeNull();
  });
});
