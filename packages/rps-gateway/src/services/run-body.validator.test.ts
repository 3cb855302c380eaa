import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { AppError } from '@rps/common';
import { RunBodyValidator, fastRunRequestMeta } from './run-body.validator';
import { parseRunRequest, referenceRunRequest, type RunRequestMeta } from './run-request.parser';

/*
 * The one-pass validator against its reference (JSON.parse + zod), STYLE.md 15:
 * on a corpus of valid and invalid bodies, on every split point of a few, and
 * on generated ones. The fast path may say "not sure" (null) for anything;
 * when it vouches for a body, the reference must accept it with the same ids.
 */

type Verdict = { ok: RunRequestMeta } | { error: { status: number; code: string; details: unknown } };

function verdict(fn: () => RunRequestMeta): Verdict {
  try {
    return { ok: fn() };
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    return { error: { status: err.status, code: err.code, details: err.details } };
  }
}

/** The differential property on one body: returns the fast verdict for further checks. */
function agree(raw: Buffer): RunRequestMeta | null {
  const fast = fastRunRequestMeta(raw);
  const reference = verdict(() => referenceRunRequest(raw));
  if (fast !== null) expect(reference).toEqual({ ok: fast });
  expect(verdict(() => parseRunRequest(raw))).toEqual(reference);
  return fast;
}

const tv1 = {
  params: {},
  entities: { signalSets: {}, signals: {} },
  owned: { signalSets: {} },
  type: 'python',
  codeArchive: { type: 'Buffer', data: [46, 47, 0, 255, 9, 10] },
  accessToken: 'tok',
  state: null,
  jobId: 5,
  runId: 42,
  taskId: 7,
};
const json = (value: unknown, space?: number) => Buffer.from(JSON.stringify(value, null, space));
const without = (key: keyof typeof tv1) => {
  const copy: Record<string, unknown> = { ...tv1 };
  delete copy[key];
  return copy;
};

/** TV1 with 40 plain bytes of 1, 2 and 3 digits, `spelling` as the 21st element. */
function amidBytes(spelling: string): Buffer {
  const run = Array.from({ length: 20 }, (_, i) => [7, 42, 255, 0][i % 4]).join(',');
  return Buffer.from(JSON.stringify(tv1).replace('[46,47,0,255,9,10]', `[${run},${spelling},${run}]`));
}

/** TV1 with `member` (raw JSON text) as its first member. */
const withFirst = (member: string) => Buffer.from(`{${member},${JSON.stringify(tv1).slice(1)}`);
/** TV1 with `archive` (raw JSON text) as its codeArchive. */
const withArchive = (archive: string) =>
  Buffer.from(JSON.stringify(tv1).replace('{"type":"Buffer","data":[46,47,0,255,9,10]}', archive));
const everyByte = Array.from({ length: 256 }, (_, i) => i);

/** Bodies the fast path must decide itself (so the fast path is really taken). */
const decided: Array<[string, Buffer]> = [
  ['plain bytes of every width', amidBytes('7')],
  ['spaces and newlines amid plain bytes', amidBytes(' 1 ,\n 22 ,\t255')],
  ['TV1', json(tv1)],
  ['TV1 indented', json(tv1, 2)],
  ['digit-string ids', json({ ...tv1, taskId: '7', jobId: '05' })],
  ['negative and zero ids', json({ ...tv1, taskId: -3, jobId: 0 })],
  ['a subtype', json({ ...tv1, subtype: 'energy' })],
  ['no runId', json(without('runId'))],
  ['unknown keys with any values', json({ ...tv1, extra: [1, { a: 'x\\"\u00e9' }], z: -1.5e-3, t: true })],
  ['nulls for present keys', json({ ...tv1, params: null, entities: null, owned: null, accessToken: null })],
  ['data before type', json({ ...tv1, codeArchive: { data: [1, 2], type: 'Buffer' } })],
  ['an empty archive', json({ ...tv1, codeArchive: { type: 'Buffer', data: [] } })],
  ['an archive of another type', json({ ...tv1, codeArchive: { type: 'Other', data: 'abc' } })],
  ['archive extra keys', json({ ...tv1, codeArchive: { type: 'Buffer', data: [3], x: { y: [] } } })],
  ['an escaped accessToken', json({ ...tv1, accessToken: 'a\nb\u0001\ud83d' })],
  [
    'whitespace everywhere',
    Buffer.from(
      ` \n{ "taskId" : 7 ,"jobId":5,"type":"p","codeArchive":{ "type" : "Buffer" , "data" : [ 1 , 2 ,3 ] },"params":{},"entities":{},"owned":{},"accessToken":"t","state":null } \r\n`,
    ),
  ],
  [
    'every escape and hex digit in an ignored string',
    withFirst(String.raw`"x":"a b\"\\\/\b\f\n\r\t\uAaFf\u09fA"`),
  ],
  [
    'numbers of every form in ignored values',
    withFirst('"x":[ 0,-0,-12,19,1e5,1E5,1e+2,1E-2,1.5e3,1.5E3,0.5,-0.5e-1,1e23,0e0,12.75 ]'),
  ],
  ['empty containers with spaces and every literal', withFirst('"x":{ },"y":[ ],"z":[true,false,null]')],
  ['ids of every digit', json({ ...tv1, taskId: 1234567890, jobId: '9876543210' })],
  ['a __proto__ key in the body and in the archive', withFirst('"__proto__":{"taskId":"x"}')],
  ['a __proto__ key in the archive', withArchive('{"__proto__":{"type":1},"type":"Buffer","data":[1]}')],
  ['type and data keys in an object before the archive', json({ x: { type: 'x', data: 'y' }, ...tv1 })],
  [
    'an array with commas in the archive after its data',
    withArchive('{"type":"Buffer","data":[1,2],"x":[1,"a",[2,3]]}'),
  ],
  ['every byte value', json({ ...tv1, codeArchive: { type: 'Buffer', data: everyByte } })],
  ['every byte value, indented', json({ ...tv1, codeArchive: { type: 'Buffer', data: everyByte } }, 2)],
  ['archive data given twice, the last all bytes', withArchive('{"type":"Buffer","data":[256],"data":[1]}')],
  [
    'an archive type given twice, the last not Buffer',
    withArchive('{"type":"Buffer","data":[256],"type":"Other"}'),
  ],
  // Two digits and a closing bracket before the archive's next key: the lane must stop at the bracket.
  ['data before type, ending in a two-digit byte', withArchive('{"data":[1,12],"type":"Buffer"}')],
  // Numbers the byte loop hands to the generic scanner mid-number (not bytes, but fine for another type).
  ...['1000', '1.5', '1e2', '2E1'].map((n): [string, Buffer] => [
    `the data [${n}] of another archive type`,
    withArchive(`{"type":"Other","data":[${n}]}`),
  ]),
  [
    'invalid UTF-8 inside a string',
    Buffer.concat([
      Buffer.from('{"x":"'),
      Buffer.from([0xff, 0xc3]),
      Buffer.from(`",${JSON.stringify(tv1).slice(1)}`),
    ]),
  ],
];

/** Bodies the reference refuses (the fast path must say null and the errors stay the reference's). */
const refused: Array<[string, Buffer]> = [
  ['not JSON', Buffer.from('{"params":')],
  ['empty', Buffer.alloc(0)],
  ['an array', json([tv1])],
  ['null', Buffer.from('null')],
  ['trailing garbage', Buffer.from(`${JSON.stringify(tv1)}x`)],
  ['two objects', Buffer.from(`${JSON.stringify(tv1)}{}`)],
  ['a BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), json(tv1)])],
  ...(
    ['taskId', 'jobId', 'type', 'codeArchive', 'params', 'entities', 'owned', 'accessToken', 'state'] as const
  ).map((key): [string, Buffer] => [`no ${key}`, json(without(key))]),
  ['a byte out of range', json({ ...tv1, codeArchive: { type: 'Buffer', data: [1, 256] } })],
  ['a negative byte', json({ ...tv1, codeArchive: { type: 'Buffer', data: [1, -1] } })],
  ['a fractional byte', json({ ...tv1, codeArchive: { type: 'Buffer', data: [1, 1.5] } })],
  ['a string byte', json({ ...tv1, codeArchive: { type: 'Buffer', data: [1, '2'] } })],
  ['a null byte', json({ ...tv1, codeArchive: { type: 'Buffer', data: [null] } })],
  ['data not an array', json({ ...tv1, codeArchive: { type: 'Buffer', data: 'abc' } })],
  ['no data', json({ ...tv1, codeArchive: { type: 'Buffer' } })],
  ['no archive type', json({ ...tv1, codeArchive: { data: [] } })],
  ['archive type a number', json({ ...tv1, codeArchive: { type: 1, data: [] } })],
  ['archive not an object', json({ ...tv1, codeArchive: [1, 2] })],
  ['a fractional task id', json({ ...tv1, taskId: 4.2 })],
  ['a non-digit id string', json({ ...tv1, jobId: '5a' })],
  ['an empty id string', json({ ...tv1, jobId: '' })],
  ['a null id', json({ ...tv1, taskId: null })],
  ['an unsafe integer id', json({ ...tv1, taskId: 2 ** 60 })],
  ['a null subtype', json({ ...tv1, subtype: null })],
  ['a numeric type', json({ ...tv1, type: 3 })],
  ['a leading zero byte', Buffer.from(JSON.stringify(tv1).replace('[46,', '[046,'))],
  // The same faults amid long runs of plain bytes, where the validator's fast lane meets them.
  ...(
    [
      ['a byte out of range', '256'],
      ['a four-digit byte', '1000'],
      ['a negative byte', '-1'],
      ['a fractional byte', '1.5'],
      ['a leading zero byte', '046'],
      ['a leading zero', '00'],
      ['a string byte', '"2"'],
      ['a null byte', 'null'],
      ['an empty element', ''],
      ['a two-digit byte and a dot', '12.'],
      ['a letter before a digit', 'x1'],
      ['a byte out of range after a spaced one', '1 ,300'],
    ] as const
  ).map(([name, spelling]): [string, Buffer] => [`${name} amid plain bytes`, amidBytes(spelling)]),
  // Keys named type and data in other objects are not the archive's.
  [
    'an archive without type, a type key in params',
    json({ ...tv1, params: { type: 'x' }, codeArchive: { data: [1] } }),
  ],
  ['a trailing comma', Buffer.from(JSON.stringify(tv1).replace('[46,47,0,255,9,10]', '[46,]'))],
  ['a raw control character in a string', Buffer.from(JSON.stringify(tv1).replace('"tok"', '"t\x01k"'))],
  ['a bad escape', Buffer.from(JSON.stringify(tv1).replace('"tok"', '"t\\xk"'))],
  // Syntax the fast path reads only to skip it: it must refuse what JSON.parse refuses.
  ['a trailing comma in an object', withFirst('"x":{"a":1,}')],
  ['a key without its opening quote', withFirst('"x":1,a":1')],
  ['a key without a colon', withFirst('"x"=1')],
  ...['G', 'g', '@', '`', ':', '/'].map((c): [string, Buffer] => [
    `a \\u escape with ${c}`,
    withFirst(`"x":"\\u00${c}0"`),
  ]),
  ['a short \\u escape', withFirst('"x":"\\u0"')],
  ...['nul1', 'tru', 'fals', 'nulll'].map((l): [string, Buffer] => [
    `the literal ${l}`,
    withFirst(`"x":${l}`),
  ]),
  ...['-', '-x', '01', '-01', '1.', '1.e1', '1e', '1e+', '1ex', '.5', '+1', '1e+-1', '-.5'].map(
    (n): [string, Buffer] => [`the number ${n}`, withFirst(`"x":[${n}]`)],
  ),
  ['an array for the body', Buffer.from(`[${JSON.stringify(tv1).slice(1)}`)],
  ['an archive opened with [', withArchive('["type":"Buffer","data":[1]}')],
  ['a nested array as a byte', withArchive('{"type":"Buffer","data":[[1]]}')],
  ['a nested array amid bytes', withArchive('{"type":"Buffer","data":[1,[2]]}')],
  ['an array closed by }', withFirst('"x":[1}')],
  ['an object closed by ]', withFirst('"x":{"a":1]')],
  [
    'a second codeArchive without data',
    Buffer.from(JSON.stringify(tv1).replace(/}$/, ',"codeArchive":{"type":"Other"}}')),
  ],
  ...['[01]', '[0 1]', '[1.]', '[1,]', '[-]', '[1 2]', '[1e]', '[ 1 2]', '[1,,2]', '[,1]'].map(
    (data): [string, Buffer] => [
      `the data ${data} of another archive type`,
      withArchive(`{"type":"Other","data":${data}}`),
    ],
  ),
];

/** Bodies the reference accepts but the fast path leaves to it (unusual spellings). */
const deferred: Array<[string, Buffer]> = [
  ['an escaped key', Buffer.from(JSON.stringify(tv1).replace('"taskId"', '"task\\u0049d"'))],
  ['a duplicate key', Buffer.from(JSON.stringify(tv1).replace('"taskId":7', '"taskId":"x","taskId":7'))],
  ['a byte written 1.0', Buffer.from(JSON.stringify(tv1).replace('[46,', '[46.0,'))],
  ['a byte written 1e1', Buffer.from(JSON.stringify(tv1).replace('[46,', '[4.6e1,'))],
  ['an id written 7.0', Buffer.from(JSON.stringify(tv1).replace('"taskId":7', '"taskId":7.0'))],
  ['an escaped Buffer', Buffer.from(JSON.stringify(tv1).replace('"Buffer"', '"Buf\\u0066er"'))],
  ['a byte written 4.6E1', Buffer.from(JSON.stringify(tv1).replace('[46,', '[4.6E1,'))],
  ['a byte written 46e0', Buffer.from(JSON.stringify(tv1).replace('[46,', '[46e0,'))],
  ['a byte written 46E0 after a space', Buffer.from(JSON.stringify(tv1).replace('[46,', '[ 46E0,'))],
  ['a codeArchive given twice', withFirst('"codeArchive":{"type":"Other","data":1}')],
];

describe('RunBodyValidator against the reference (JSON.parse + zod)', () => {
  it.each(decided)(
    'when the body is %s then the fast path decides it as the reference does',
    (_name, raw) => {
      expect(agree(raw)).not.toBeNull();
    },
  );

  it.each(refused)('when the body has %s then both refuse it with the same error', (_name, raw) => {
    expect(agree(raw)).toBeNull();
    expect(verdict(() => referenceRunRequest(raw))).toHaveProperty('error');
  });

  it.each(deferred)(
    'when the body has %s then the fast path defers and the reference accepts',
    (_name, raw) => {
      expect(agree(raw)).toBeNull();
      expect(verdict(() => referenceRunRequest(raw))).toHaveProperty('ok');
    },
  );

  it('when a body arrives in two chunks at any split point then the verdict is the same as in one', () => {
    for (const [name, raw] of [...decided, ...refused, ...deferred]) {
      const whole = fastRunRequestMeta(raw);
      // Every point of the short bodies; 400 points spread over the long ones (the same bytes repeated).
      const step = Math.max(1, Math.floor(raw.length / 400));
      for (let at = 0; at <= raw.length; at += step) {
        const validator = new RunBodyValidator();
        validator.write(raw.subarray(0, at));
        validator.write(raw.subarray(at));
        if (!isDeepStrictEqual(validator.result(), whole)) {
          throw new Error(
            `${name}, split at ${at}: ${JSON.stringify(validator.result())}, whole: ${JSON.stringify(whole)}`,
          );
        }
      }
    }
  });

  it('when bodies are generated from the schema and mutated then fast path and reference agree', () => {
    const id = fc.oneof(
      fc.integer({ min: -5, max: 1e6 }),
      fc.integer({ min: 0, max: 99 }).map(String),
      fc.double({ noNaN: true }),
      fc.constantFrom('', 'x', '1e3', ' 7', null, true, {}),
    );
    const byte = fc.oneof(
      { weight: 20, arbitrary: fc.integer({ min: 0, max: 255 }) },
      { weight: 1, arbitrary: fc.constantFrom(256, -1, 1.5, 1e2, '1', null, [], 1000) },
    );
    const archive = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({ type: fc.constant('Buffer'), data: fc.array(byte, { maxLength: 40 }) }),
      },
      {
        weight: 1,
        arbitrary: fc.record(
          { type: fc.oneof(fc.string(), fc.integer()), data: fc.jsonValue() },
          { requiredKeys: [] },
        ),
      },
      { weight: 1, arbitrary: fc.jsonValue() },
    );
    const present = fc.oneof(
      { weight: 3, arbitrary: fc.jsonValue() },
      { weight: 1, arbitrary: fc.constant(undefined) },
    );
    const body = fc.record(
      {
        taskId: id,
        jobId: id,
        type: fc.oneof({ weight: 5, arbitrary: fc.string() }, { weight: 1, arbitrary: fc.jsonValue() }),
        subtype: fc.oneof(fc.string(), fc.constant(null)),
        codeArchive: archive,
        params: present,
        entities: present,
        owned: present,
        accessToken: present,
        state: present,
        runId: fc.jsonValue(),
        extra: fc.jsonValue(),
      },
      {
        requiredKeys: [
          'taskId',
          'jobId',
          'type',
          'codeArchive',
          'params',
          'entities',
          'owned',
          'accessToken',
          'state',
        ],
      },
    );
    const mutation = fc.oneof(
      fc.constant((b: Buffer) => b),
      fc.constant((b: Buffer) => b),
      fc.nat().map((n) => (b: Buffer) => b.subarray(0, n % (b.length + 1))),
      fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([n, v]) => (b: Buffer) => {
        const copy = Buffer.from(b);
        if (copy.length > 0) copy[n % copy.length] = v;
        return copy;
      }),
      fc
        .tuple(fc.nat(), fc.constantFrom(' ', ',', '"', '\\', '}', ']', '0', '-', '.', 'e', '{"a":1}'))
        .map(([n, s]) => (b: Buffer) => {
          const at = n % (b.length + 1);
          return Buffer.concat([b.subarray(0, at), Buffer.from(s), b.subarray(at)]);
        }),
    );
    fc.assert(
      fc.property(body, fc.constantFrom(undefined, 1), mutation, fc.nat(), (value, space, mutate, split) => {
        const raw = mutate(json(value, space));
        const fast = agree(raw);
        const at = split % (raw.length + 1);
        const validator = new RunBodyValidator();
        validator.write(raw.subarray(0, at));
        validator.write(raw.subarray(at));
        expect(validator.result()).toEqual(fast);
      }),
      // Mutation testing runs this for every mutant of the validator: fewer cases there
      // (scripts/mutation.sh sets RPS_PROPERTY_RUNS), all of them in the test command.
      { numRuns: Number(process.env.RPS_PROPERTY_RUNS) || 3000 },
    );
  });
});

describe('parseRunRequest', () => {
  afterEach(() => jest.restoreAllMocks());

  it('when the caller gives the validator verdict then it is used as is', () => {
    expect(parseRunRequest(json(tv1), { taskId: 1, jobId: 2 })).toEqual({ taskId: 1, jobId: 2 });
  });

  it('when the fast path vouches for a body then JSON.parse never runs', () => {
    const parse = jest.spyOn(JSON, 'parse');
    expect(parseRunRequest(json(tv1))).toEqual({ taskId: 7, jobId: 5 });
    expect(parse).not.toHaveBeenCalled();
  });

  it('when the verdict is null then the reference decides', () => {
    const parse = jest.spyOn(JSON, 'parse');
    expect(parseRunRequest(json(tv1), null)).toEqual({ taskId: 7, jobId: 5 });
    expect(parse).toHaveBeenCalledTimes(1);
  });
});

/*
 * The lane is the archive's speed (docs/gateway.md): JSON.stringify's
 * spelling must take it, whatever the chunks. An element goes through it when
 * it is followed by a comma and starts at least 4 bytes before the end of its
 * chunk (the lane looks at an element and its comma at once); the loop reads
 * the rest, then gives the next element back to the lane.
 */
describe('RunBodyValidator lane for plain bytes', () => {
  const data = [...everyByte, ...Array.from({ length: 3000 }, (_, i) => (i * 97 + 13) % 256)];
  const raw = json({ ...tv1, codeArchive: { type: 'Buffer', data } });
  const dataAt = raw.indexOf('"data":[') + '"data":['.length;
  const elements: Array<{ at: number; length: number }> = [];
  for (let at = dataAt; raw[at - 1] !== 0x5d;) {
    const end = raw.indexOf(',', at);
    const close = raw.indexOf(']', at);
    if (close < end) break; // the last element, followed by ']'
    elements.push({ at, length: end + 1 - at });
    at = end + 1;
  }

  it.each([raw.length, 16384, 1000, 61, 7, 5, 4, 3, 1])(
    'when the body comes in chunks of %i bytes then every element whole in its chunk goes through the lane',
    (size) => {
      const validator = new RunBodyValidator();
      for (let at = 0; at < raw.length; at += size) validator.write(raw.subarray(at, at + size));
      let expected = 0;
      for (const e of elements) {
        const chunkEnd = Math.min((Math.floor(e.at / size) + 1) * size, raw.length);
        if (e.at + 4 <= chunkEnd) expected += e.length;
      }
      expect(validator.result()).toEqual({ taskId: 7, jobId: 5 });
      expect(validator.laneBytes).toBe(expected);
      if (size >= 1000)
        expect(expected).toBeGreaterThan(0.99 * elements.reduce((sum, e) => sum + e.length, 0));
    },
  );

  it('when the bytes are spaced out then the loop reads them all and decides the same', () => {
    const validator = new RunBodyValidator();
    validator.write(json({ ...tv1, codeArchive: { type: 'Buffer', data } }, 1));
    expect(validator.result()).toEqual({ taskId: 7, jobId: 5 });
    expect(validator.laneBytes).toBe(0);
  });
});
