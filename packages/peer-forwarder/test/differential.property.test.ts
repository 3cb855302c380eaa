import fc from 'fast-check';
import { disagreement, systemViews } from './support/fast-path-model';
import { LlhttpReference } from './support/llhttp-reference';
import { END_OF_STREAM } from './support/request-corpus';

/**
 * Property-based half of the differential test (docs/forwarder.md,
 * "Differential testing against llhttp"): random request heads (methods,
 * targets, versions, framing and other headers with names and values drawn
 * from an alphabet of dangerous characters, bodies raw or chunked, 1 to 3
 * pipelined, cut at a random offset) must be read by the forwarder (fast path
 * decision, Node's server from the first hand-off) as llhttp reads them.
 *
 * A fixed seed in CI; run longer with `FC_RUNS=20000 FC_SEED=<n> npx jest
 * packages/peer-forwarder/test/differential.property.test.ts`. A failure
 * prints the seed and the shrunk counterexample.
 */
const RUNS = Number(process.env.FC_RUNS ?? 150);
const SEED = Number(process.env.FC_SEED ?? 11);
if (RUNS > 1000) jest.setTimeout(3_600_000);

/** Characters that matter to HTTP/1.1 framing, plus ordinary ones. */
const DANGEROUS = [
  '\r',
  '\n',
  '\t',
  ' ',
  '\x00',
  '\x01',
  '\x0b',
  '\x7f',
  '\x80',
  '\xe9',
  '\xff',
  ',',
  ';',
  ':',
  '"',
];
const char = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...'abcxyzABC019-_./'.split('')) },
  { weight: 1, arbitrary: fc.constantFrom(...DANGEROUS) },
);
const text = (maxLength: number) => fc.array(char, { maxLength }).map((cs) => cs.join(''));

const method = fc.constantFrom(
  'GET',
  'POST',
  'PUT',
  'HEAD',
  'DELETE',
  'OPTIONS',
  'PATCH',
  'FOO',
  'get',
  'CONNECT',
);
const target = fc.oneof(
  fc.constantFrom('/', '/a?b=c', '/%41', 'http://x/y', '*', 'x:443'),
  text(8).map((t) => `/${t}`),
);
const version = fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/1.2', 'http/1.1', '');
const name = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'Host',
      'Content-Length',
      'Transfer-Encoding',
      'Connection',
      'content-length',
      'TRANSFER-ENCODING',
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('Expect', 'Upgrade', 'Transfer_Encoding', 'Content-Length ', ' Host', 'X-A'),
  },
  { weight: 1, arbitrary: text(6) },
);
const value = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'x',
      'chunked',
      'identity',
      'chunked, identity',
      'gzip, chunked',
      '0',
      '3',
      '5',
      '03',
      '3, 3',
      '3, 5',
      'close',
      'keep-alive',
      '100-continue',
    ),
  },
  { weight: 2, arbitrary: text(8) },
);
const separator = fc.constantFrom(': ', ': ', ':', ' : ', ':\t');
const header = fc.tuple(name, separator, value).map(([n, s, v]) => `${n}${s}${v}`);
const eol = fc.constantFrom('\r\n', '\r\n', '\r\n', '\r\n', '\n');

/** A body as raw bytes or as a chunked encoding (sometimes malformed) of random text. */
const chunked = fc
  .tuple(
    fc.array(text(6), { maxLength: 3 }),
    fc.constantFrom('', ';e=1', ' '),
    fc.constantFrom('', 'X: 1\r\n'),
    fc.boolean(),
  )
  .map(([chunks, ext, trailer, upper]) => {
    const size = (n: number) => (upper ? n.toString(16).toUpperCase() : n.toString(16));
    return chunks.map((c) => `${size(c.length)}${ext}\r\n${c}\r\n`).join('') + `0\r\n${trailer}\r\n`;
  });
const body = fc.oneof(text(10), chunked);

const request = fc
  .tuple(method, target, version, fc.array(header, { maxLength: 5 }), fc.boolean(), eol, body)
  .map(([m, t, v, headers, withHost, lineEnd, b]) => {
    const lines = [`${m} ${t}${v ? ` ${v}` : ''}`, ...(withHost ? ['Host: x'] : []), ...headers];
    return lines.map((l) => l + lineEnd).join('') + lineEnd + b;
  });
const streamWithCut = fc
  .array(request, { minLength: 1, maxLength: 3 })
  .map((rs) => Buffer.from(rs.join('') + END_OF_STREAM, 'latin1'))
  .chain((stream) => fc.tuple(fc.constant(stream), fc.integer({ min: 0, max: stream.length - 1 })));

describe('differential property: random heads against llhttp', () => {
  let reference: LlhttpReference;
  beforeAll(async () => {
    reference = await LlhttpReference.start();
  });
  afterAll(async () => {
    await reference.close();
  });

  it('when random request streams are cut at a random offset then the forwarder reads them as llhttp does', async () => {
    await fc.assert(
      fc.asyncProperty(streamWithCut, async ([stream, cut]) => {
        // No Content-Length generated exceeds the closing request behind every stream.
        const whole = await reference.run(stream);
        for (const view of await systemViews(stream, cut > 0 ? [cut] : [], (s) => reference.run(s))) {
          const why = disagreement(whole, view);
          if (why) throw new Error(`${JSON.stringify(stream.toString('latin1'))} cut at ${cut}: ${why}`);
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});
