import { isDeepStrictEqual } from 'node:util';

import {
  ChunkedDecoder,
  contentLengthOf,
  headerTokens,
  Http1ParseError,
  MAX_HEAD_BYTES,
  parseHeaderBlock,
  parseRequestHead,
  parseResponseHead,
  ResponseParser,
} from './http1.parser';
import type { ResponseEvents, ResponseHead } from './http1.parser';

type Trace = { kind: 'head'; head: ResponseHead } | { kind: 'body'; data: string } | { kind: 'complete' };

/** Wire bytes from a string, one byte per character (so '\xff' is one byte). */
const bytes = (text: string) => Buffer.from(text, 'latin1');

/** Cuts `buf` at the given (ascending) offsets. */
const splitAt = (buf: Buffer, ...points: number[]): Buffer[] => {
  const pieces: Buffer[] = [];
  let from = 0;
  for (const point of points) {
    pieces.push(buf.subarray(from, point));
    from = point;
  }
  pieces.push(buf.subarray(from));
  return pieces;
};
const byteByByte = (buf: Buffer): Buffer[] => Array.from(buf, (_, i) => buf.subarray(i, i + 1));

const record = () => {
  const trace: Trace[] = [];
  const events: ResponseEvents = {
    onHead(head) {
      trace.push({ kind: 'head', head });
    },
    onBody(chunk) {
      // Copied at once: the parser may hand out views of the caller's buffer.
      trace.push({ kind: 'body', data: chunk.toString('latin1') });
    },
    onComplete() {
      trace.push({ kind: 'complete' });
    },
  };
  return { trace, events };
};

/** A parser reset for `method`, fed `pieces` one `execute` each. */
const parse = (pieces: readonly Buffer[], method = 'GET') => {
  const { trace, events } = record();
  const parser = new ResponseParser(events);
  parser.reset(method);
  for (const piece of pieces) parser.execute(piece);
  return { parser, trace };
};

/** The trace with adjacent body chunks joined: how the body was cut up is not observable. */
const merged = (trace: readonly Trace[]): Trace[] => {
  const out: Trace[] = [];
  for (const event of trace) {
    const last = out[out.length - 1];
    if (event.kind === 'body' && last?.kind === 'body') last.data += event.data;
    else out.push({ ...event });
  }
  return out;
};
const headsOf = (trace: readonly Trace[]) =>
  trace.flatMap((event) => (event.kind === 'head' ? [event.head] : []));
const bodyOf = (trace: readonly Trace[]) =>
  trace.map((event) => (event.kind === 'body' ? event.data : '')).join('');
const emptyBodies = (trace: readonly Trace[]) =>
  trace.filter((event) => event.kind === 'body' && event.data === '').length;

/**
 * Feeds `wire` cut at every single offset, at every pair of offsets and byte
 * by byte, and expects each run to give the same (merged) events as one
 * execute with the whole buffer, with no empty body chunk and no extra bytes.
 * Returns the reference trace.
 */
const expectSplitInvariant = (wire: Buffer, method = 'GET', endAfter = false): Trace[] => {
  const run = (pieces: readonly Buffer[]) => {
    const { parser, trace } = parse(pieces, method);
    if (endAfter) parser.end();
    return {
      trace: merged(trace),
      complete: parser.complete,
      extraBytes: parser.extraBytes,
      empty: emptyBodies(trace),
    };
  };
  const reference = run([wire]);
  expect(reference.complete).toBe(true);
  expect(reference.extraBytes).toBe(0);
  const expected = { ...reference, empty: 0 };
  // Compared without expect() per run (thousands of runs); the mismatches are listed with their split points.
  const mismatches: Array<{ split: string; actual: ReturnType<typeof run> }> = [];
  const check = (split: string, pieces: readonly Buffer[]) => {
    const actual = run(pieces);
    if (!isDeepStrictEqual(actual, expected)) mismatches.push({ split, actual });
  };
  for (let i = 0; i <= wire.length; i++) check(`${i}`, splitAt(wire, i));
  for (let i = 1; i < wire.length; i++) {
    for (let j = i; j < wire.length; j++) check(`${i},${j}`, splitAt(wire, i, j));
  }
  check('byte-by-byte', byteByByte(wire));
  expect(mismatches).toEqual([]);
  return reference.trace;
};

/** `message`: a pattern, or an Http1ParseError whose message must be the exact one. */
const expectParseError = (fn: () => unknown, message?: RegExp | Http1ParseError) => {
  expect(fn).toThrow(Http1ParseError);
  if (message) expect(fn).toThrow(message);
};

/** A head of exactly `size` bytes (without its final CRLF CRLF) for a bodiless 200. */
const headOfSize = (size: number) => {
  const prefix = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: ';
  return prefix + 'a'.repeat(size - prefix.length);
};

describe('Http1ParseError', () => {
  it('when created then it is an Error with the UPSTREAM_PROTOCOL code and its own name', () => {
    const error = new Http1ParseError('bad');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('Http1ParseError');
    expect(error.code).toBe('UPSTREAM_PROTOCOL');
    expect(error.message).toBe('bad');
  });
});

describe('parseHeaderBlock', () => {
  it('when a head is split then the start line and headers come back in order and spelling, values trimmed', () => {
    const block = [
      'HTTP/1.1 200 OK',
      'Content-Type:text/html',
      'X-Spaced: \t padded value \t ',
      'x-empty:',
      'Location: http://example.test:8080/a?b=c',
      'set-cookie: a=1',
      'Set-Cookie: b=2',
      "X-Token-Chars!#$%&'*+-.^_`|~: ok",
      'X-Obs-Text: caf\xe9\tend',
    ].join('\r\n');
    expect(parseHeaderBlock(block)).toEqual({
      startLine: 'HTTP/1.1 200 OK',
      rawHeaders: [
        'Content-Type',
        'text/html',
        'X-Spaced',
        'padded value',
        'x-empty',
        '',
        'Location',
        'http://example.test:8080/a?b=c',
        'set-cookie',
        'a=1',
        'Set-Cookie',
        'b=2',
        "X-Token-Chars!#$%&'*+-.^_`|~",
        'ok',
        'X-Obs-Text',
        'caf\xe9\tend',
      ],
    });
  });

  it('when the block is only a start line then there are no headers', () => {
    expect(parseHeaderBlock('HTTP/1.1 204 No Content')).toEqual({
      startLine: 'HTTP/1.1 204 No Content',
      rawHeaders: [],
    });
  });

  it('when a header line is continued with obs-fold then it is an Http1ParseError', () => {
    expectParseError(() => parseHeaderBlock('HTTP/1.1 200 OK\r\nX-A: one\r\n two'), /obsolete line folding/);
    expectParseError(() => parseHeaderBlock('HTTP/1.1 200 OK\r\nX-A: one\r\n\ttwo'), /obsolete line folding/);
    // A folded line that happens to contain a colon is still refused.
    expectParseError(() => parseHeaderBlock('HTTP/1.1 200 OK\r\nX-A: one\r\n x: two'));
  });

  it('when a header name is not a token then it is an Http1ParseError', () => {
    for (const line of ['Bad Name: x', 'X-A : x', 'X-A\t: x', 'X(A): x', 'X-\xe9: x', 'X-A\x00: x']) {
      expectParseError(() => parseHeaderBlock(`HTTP/1.1 200 OK\r\n${line}`), /invalid header name/);
    }
  });

  it('when a header line has no name or no colon then it is an Http1ParseError', () => {
    expectParseError(() => parseHeaderBlock('HTTP/1.1 200 OK\r\n: no-name'), /malformed header line/);
    expectParseError(() => parseHeaderBlock('HTTP/1.1 200 OK\r\nno-colon-here'), /malformed header line/);
    expectParseError(
      () => parseHeaderBlock('HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nX-B: 2'),
      /malformed header line/,
    );
  });

  // The message reaches the peer in the 502 body (upstream-error.service.ts):
  // it quotes at most 80 characters of the upstream's line.
  it('when a long header line is refused then the message quotes only its first 80 characters', () => {
    const noColon = `HTTP/1.1 200 OK\r\n${'x'.repeat(100)}\r\nX-B: 2`;
    expectParseError(
      () => parseHeaderBlock(noColon),
      new Http1ParseError(`malformed header line: "${'x'.repeat(80)}"`),
    );
    const badName = `HTTP/1.1 200 OK\r\nBad Name${'n'.repeat(100)}: v\r\nX-B: 2`;
    expectParseError(
      () => parseHeaderBlock(badName),
      new Http1ParseError(`invalid header name: "Bad Name${'n'.repeat(72)}"`),
    );
    const controlInName = `HTTP/1.1 200 OK\r\nX\x01${'a'.repeat(100)}: v\r\nX-B: 2`;
    expectParseError(
      () => parseHeaderBlock(controlInName),
      new Http1ParseError(`invalid header name: "X\\u0001${'a'.repeat(78)}"`),
    );
  });

  it('when a header value holds a control character, bare CR or bare LF then it is an Http1ParseError', () => {
    for (const value of ['a\x00b', 'a\x01b', 'a\x1bb', 'a\x7fb', 'a\rb', 'a\nb', 'a\r']) {
      expectParseError(
        () => parseHeaderBlock(`HTTP/1.1 200 OK\r\nX-A: ${value}`),
        /invalid character in header X-A/,
      );
    }
  });
});

describe('headerTokens', () => {
  it('when a header appears several times in any case then its comma-separated tokens are joined, lower-cased', () => {
    const raw = ['Connection', 'Keep-Alive, X-Hop', 'content-type', 'a, b', 'CONNECTION', ' , Upgrade ,'];
    expect(headerTokens(raw, 'connection')).toEqual(['keep-alive', 'x-hop', 'upgrade']);
  });

  it('when no header has exactly that name then there are no tokens', () => {
    expect(headerTokens(['Connections', 'close', 'X-Connection', 'close'], 'connection')).toEqual([]);
    expect(headerTokens([], 'connection')).toEqual([]);
  });

  it('when a header name is as long as the one asked for but another then its tokens are not taken', () => {
    expect(headerTokens(['Keep-Alive', 'timeout=5', 'Connectiom', 'close'], 'connection')).toEqual([]);
  });
});

describe('contentLengthOf', () => {
  it('when there is no Content-Length then it is null', () => {
    expect(contentLengthOf(['Content-Type', 'text/plain', 'Content-Lengths', '5'])).toBeNull();
  });

  it('when a header name is as long as Content-Length but another then it is not a Content-Length', () => {
    expect(contentLengthOf(['Content-Digest', 'sha-256=:abc=:', 'X-Content-Size', '5'])).toBeNull();
  });

  it('when Content-Length is a number then it is that number, whatever the name case', () => {
    expect(contentLengthOf(['content-length', '0'])).toBe(0);
    expect(contentLengthOf(['CONTENT-LENGTH', '12345'])).toBe(12345);
    expect(contentLengthOf(['Content-Length', '007'])).toBe(7);
    expect(contentLengthOf(['Content-Length', '999999999999999'])).toBe(999999999999999);
  });

  it("when identical values repeat ('5, 5' or two headers) then they count as one", () => {
    expect(contentLengthOf(['Content-Length', '5, 5'])).toBe(5);
    expect(contentLengthOf(['Content-Length', '5,5 ,  5'])).toBe(5);
    expect(contentLengthOf(['Content-Length', '5', 'content-length', '5'])).toBe(5);
  });

  it("when values differ ('5, 6' or two headers) then it is an Http1ParseError", () => {
    expectParseError(() => contentLengthOf(['Content-Length', '5, 6']), /conflicting content-length/);
    expectParseError(() => contentLengthOf(['Content-Length', '5', 'Content-Length', '6']), /conflicting/);
  });

  it('when a value is not a plain decimal number then it is an Http1ParseError', () => {
    for (const bad of [
      '-1',
      'abc',
      '',
      ' ',
      '+5',
      '0x5',
      '5.0',
      '1 000',
      '5e3',
      '5,',
      '1234567890123456',
      '\uff15',
    ]) {
      expectParseError(() => contentLengthOf(['Content-Length', bad]), /invalid content-length/);
    }
  });
});

describe('parseResponseHead', () => {
  const head = (lines: string[], method = 'GET') => parseResponseHead(lines.join('\r\n'), method);

  it('when the status line is valid then code, message, minor version and headers are read', () => {
    expect(head(['HTTP/1.1 404 Not  Found Here', 'Content-Length: 3'])).toEqual({
      statusCode: 404,
      statusMessage: 'Not  Found Here',
      minor: 1,
      rawHeaders: ['Content-Length', '3'],
      framing: { kind: 'length', length: 3 },
      keepAlive: true,
    });
    expect(head(['HTTP/1.0 200 OK', 'Content-Length: 1'])).toMatchObject({ minor: 0, statusMessage: 'OK' });
    expect(head(['HTTP/1.1 200', 'Content-Length: 1']).statusMessage).toBe('');
    expect(head(['HTTP/1.1 200 ', 'Content-Length: 1']).statusMessage).toBe('');
    expect(head(['HTTP/1.1 599 Caf\xe9', 'Content-Length: 1'])).toMatchObject({
      statusCode: 599,
      statusMessage: 'Caf\xe9',
    });
  });

  it('when the status line is malformed then it is an Http1ParseError', () => {
    for (const line of [
      '',
      'HTTP/1.1',
      'HTTP/1.1 OK',
      'HTTP/1.1 20 OK',
      'HTTP/1.1 2000 OK',
      'HTTP/1.1 099 Low',
      'HTTP/1.1  200 OK',
      'HTTP/1.1 200\tOK',
      'HTTP/1.1 200 O\x00K',
      'HTTP/1.2 200 OK',
      'HTTP/2 200 OK',
      'HTTP/2.0 200 OK',
      'http/1.1 200 OK',
      ' HTTP/1.1 200 OK',
      'ICY 200 OK',
      'GET / HTTP/1.1',
    ]) {
      expectParseError(() => head([line, 'Content-Length: 0']), /invalid status line/);
    }
  });

  it('when a long status line is refused then the message quotes only its first 80 characters', () => {
    expectParseError(
      () => head([`HTTP/1.1 2000 ${'m'.repeat(100)}`, 'Content-Length: 0']),
      new Http1ParseError(`invalid status line: "HTTP/1.1 2000 ${'m'.repeat(66)}"`),
    );
  });

  it('when HTTP/1.1 says nothing about the connection then it is keep-alive, and connection: close ends it', () => {
    expect(head(['HTTP/1.1 200 OK', 'Content-Length: 1']).keepAlive).toBe(true);
    expect(head(['HTTP/1.1 200 OK', 'connection: close', 'Content-Length: 1']).keepAlive).toBe(false);
    expect(head(['HTTP/1.1 200 OK', 'Connection: Upgrade, CLOSE', 'Content-Length: 1']).keepAlive).toBe(
      false,
    );
    expect(head(['HTTP/1.1 200 OK', 'Connection: keep-alive', 'Content-Length: 1']).keepAlive).toBe(true);
  });

  it('when HTTP/1.0 answers then it is keep-alive only with connection: keep-alive', () => {
    expect(head(['HTTP/1.0 200 OK', 'Content-Length: 1']).keepAlive).toBe(false);
    expect(head(['HTTP/1.0 200 OK', 'Connection: keep-alive', 'Content-Length: 1']).keepAlive).toBe(true);
    expect(head(['HTTP/1.0 200 OK', 'Connection: Keep-Alive', 'Content-Length: 1']).keepAlive).toBe(true);
    expect(head(['HTTP/1.0 200 OK', 'Connection: close', 'Content-Length: 1']).keepAlive).toBe(false);
  });

  it('when there is a Content-Length then the body is that long, and Content-Length 0 means no body', () => {
    expect(head(['HTTP/1.1 200 OK', 'Content-Length: 42']).framing).toEqual({ kind: 'length', length: 42 });
    expect(head(['HTTP/1.1 200 OK', 'Content-Length: 0'])).toMatchObject({
      framing: { kind: 'none' },
      keepAlive: true,
    });
  });

  it('when there is neither Content-Length nor Transfer-Encoding then the body runs until close, not keep-alive', () => {
    expect(head(['HTTP/1.1 200 OK', 'Content-Type: text/plain'])).toMatchObject({
      framing: { kind: 'close' },
      keepAlive: false,
    });
    expect(head(['HTTP/1.0 200 OK', 'Connection: keep-alive'])).toMatchObject({
      framing: { kind: 'close' },
      keepAlive: false,
    });
  });

  it('when Transfer-Encoding ends in chunked then the body is chunked and the connection can be reused', () => {
    for (const codings of [['chunked'], ['Chunked'], ['gzip, chunked'], ['gzip', 'chunked']]) {
      const lines = ['HTTP/1.1 200 OK', ...codings.map((coding) => `Transfer-Encoding: ${coding}`)];
      expect(head(lines)).toMatchObject({ framing: { kind: 'chunked' }, keepAlive: true });
    }
  });

  it('when Transfer-Encoding and Content-Length are both present then it is chunked and never keep-alive', () => {
    for (const lines of [
      ['HTTP/1.1 200 OK', 'Content-Length: 5', 'Transfer-Encoding: chunked'],
      ['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', 'content-length: 0'],
    ]) {
      expect(head(lines)).toMatchObject({ framing: { kind: 'chunked' }, keepAlive: false });
    }
  });

  it('when Transfer-Encoding and a malformed Content-Length are both present then it is an Http1ParseError', () => {
    expectParseError(() => head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', 'Content-Length: 5, 6']));
    expectParseError(() => head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', 'Content-Length: abc']));
  });

  it('when Transfer-Encoding does not end in chunked then the body runs until close, not keep-alive', () => {
    for (const codings of [['gzip'], ['chunked, gzip'], ['chunked', 'gzip'], ['identity']]) {
      const lines = [
        'HTTP/1.1 200 OK',
        'Content-Length: 5',
        ...codings.map((coding) => `Transfer-Encoding: ${coding}`),
      ];
      expect(head(lines)).toMatchObject({ framing: { kind: 'close' }, keepAlive: false });
    }
  });

  it('when answering HEAD, or with 1xx, 204 or 304, then there is no body whatever the framing headers say', () => {
    expect(head(['HTTP/1.1 200 OK', 'Content-Length: 1234'], 'HEAD')).toMatchObject({
      framing: { kind: 'none' },
      keepAlive: true,
    });
    expect(head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked'], 'HEAD').framing).toEqual({ kind: 'none' });
    expect(head(['HTTP/1.1 200 OK'], 'HEAD')).toMatchObject({ framing: { kind: 'none' }, keepAlive: true });
    for (const status of ['100 Continue', '103 Early Hints', '204 No Content', '304 Not Modified']) {
      for (const framing of ['Content-Length: 10', 'Transfer-Encoding: chunked']) {
        expect(head([`HTTP/1.1 ${status}`, framing]).framing).toEqual({ kind: 'none' });
      }
    }
  });

  it('when a header line is malformed then parseResponseHead fails as parseHeaderBlock does', () => {
    expectParseError(() => head(['HTTP/1.1 200 OK', 'X-A: a', ' folded']), /obsolete line folding/);
    expectParseError(() => head(['HTTP/1.1 200 OK', 'Bad Name: x']), /invalid header name/);
    expectParseError(() => head(['HTTP/1.1 200 OK', 'X-A: a\x01']), /invalid character/);
  });
});

describe('parseRequestHead', () => {
  it('when the request line is valid then method, target, minor version and headers are read', () => {
    expect(parseRequestHead('GET /a?b=c HTTP/1.1\r\nHost: example.test')).toEqual({
      method: 'GET',
      target: '/a?b=c',
      minor: 1,
      rawHeaders: ['Host', 'example.test'],
    });
    expect(parseRequestHead('M-SEARCH * HTTP/1.0')).toEqual({
      method: 'M-SEARCH',
      target: '*',
      minor: 0,
      rawHeaders: [],
    });
  });

  it('when the request line is malformed then it is an Http1ParseError', () => {
    for (const line of [
      '',
      'GET /',
      'GET / HTTP/1.2',
      'GET / http/1.1',
      'GET  / HTTP/1.1',
      'GET / HTTP/1.1 ',
      ' GET / HTTP/1.1',
      'GET\t/ HTTP/1.1',
      'GET /caf\xe9 HTTP/1.1',
      'G(T / HTTP/1.1',
      'HTTP/1.1 200 OK',
    ]) {
      expectParseError(() => parseRequestHead(`${line}\r\nHost: x`), /invalid request line/);
    }
  });
});

describe('ChunkedDecoder', () => {
  /** A chunked body with extensions, upper- and lower-case hex, leading zeros and trailers. */
  const CHUNKED =
    '5;name=value\r\nhello\r\n' +
    'A\r\n0123456789\r\n' +
    '1B ; ext ; q="a;b"\r\nABCDEFGHIJKLMNOPQRSTUVWXYZ!\r\n' +
    '00a\t;x\r\n\r\n\r\n\xff\x00\r\n\r\n\r\n' +
    '0;last\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n';
  const DECODED = 'hello' + '0123456789' + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ!' + '\r\n\r\n\xff\x00\r\n\r\n';

  const decode = (pieces: readonly Buffer[]) => {
    const chunks: string[] = [];
    const decoder = new ChunkedDecoder((chunk) => {
      chunks.push(chunk.toString('latin1'));
    });
    const consumed = pieces.map((piece) => decoder.write(piece));
    return { body: chunks.join(''), chunks, consumed, done: decoder.done };
  };

  it('when a chunked body arrives in one piece then it is decoded and every byte is consumed', () => {
    const wire = bytes(CHUNKED);
    const result = decode([wire]);
    expect(result).toMatchObject({ body: DECODED, consumed: [wire.length], done: true });
    expect(result.chunks).toEqual([
      'hello',
      '0123456789',
      'ABCDEFGHIJKLMNOPQRSTUVWXYZ!',
      '\r\n\r\n\xff\x00\r\n\r\n',
    ]);
  });

  it('when the chunked body is split at every offset, every pair of offsets or byte by byte then it decodes the same', () => {
    const wire = bytes(CHUNKED);
    for (let i = 0; i <= wire.length; i++) {
      const result = decode(splitAt(wire, i));
      expect({ split: i, body: result.body, done: result.done }).toEqual({
        split: i,
        body: DECODED,
        done: true,
      });
      expect(result.chunks).not.toContain('');
    }
    for (let i = 1; i < wire.length; i += 3) {
      for (let j = i; j < wire.length; j++) {
        const { body, done } = decode(splitAt(wire, i, j));
        expect({ split: [i, j], body, done }).toEqual({ split: [i, j], body: DECODED, done: true });
      }
    }
    const result = decode(byteByByte(wire));
    expect(result).toMatchObject({ body: DECODED, done: true });
    expect(result.consumed).toEqual(Array<number>(wire.length).fill(1));
  });

  it('when bytes follow the last chunk and trailers then write stops there and reports what it used', () => {
    const wire = bytes('3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n');
    const result = decode([wire]);
    expect(result).toMatchObject({ body: 'abc', done: true, consumed: [13] });
    const again = decode([bytes('3\r\nabc\r\n0\r\n'), bytes('\r\nleftover')]);
    expect(again).toMatchObject({ done: true, consumed: [11, 2] });
  });

  it('when the decoder is done then further writes consume nothing and emit nothing', () => {
    const result = decode([bytes('0\r\n\r\n'), bytes('5\r\nhello\r\n')]);
    expect(result).toMatchObject({ body: '', done: true, consumed: [5, 0] });
  });

  it('when the last chunk has not arrived yet then the decoder is not done', () => {
    expect(decode([bytes('5\r\nhello\r\n')]).done).toBe(false);
    expect(decode([bytes('5\r\nhello\r\n0\r\n')]).done).toBe(false);
    expect(decode([bytes('5\r\nhello\r\n0\r\nX-T: 1\r\n')]).done).toBe(false);
  });

  it('when a chunk size line is malformed then it is an Http1ParseError', () => {
    for (const line of ['g', '', ' 5', '-5', '+5', '0x5', '5 x', 'z5', '1234567890abc']) {
      expectParseError(() => decode([bytes(`${line}\r\nhello\r\n0\r\n\r\n`)]), /invalid chunk size line/);
    }
  });

  it('when a long chunk size line is refused then the message quotes only its first 40 characters', () => {
    expectParseError(
      () => decode([bytes(`${'z'.repeat(100)}\r\nhello\r\n0\r\n\r\n`)]),
      new Http1ParseError(`invalid chunk size line: "${'z'.repeat(40)}"`),
    );
  });

  it('when chunked framing uses a bare LF or bare CR then it is an Http1ParseError', () => {
    for (const wire of [
      '5\nhello\r\n0\r\n\r\n',
      '5\r\nhello\n0\r\n\r\n',
      '5\r\nhello\r\n0\n\r\n',
      '5\r\nhello\r\n0\r\n\n',
      '5\r\nhello\r\n0\r\nX-T: 1\n\r\n',
      '5\r;x\r\nhello\r\n0\r\n\r\n',
      '5\r\r\nhello\r\n0\r\n\r\n',
    ]) {
      expectParseError(() => decode([bytes(wire)]), /bare CR or LF/);
    }
  });

  it('when chunk data is longer than its size then it is an Http1ParseError', () => {
    expectParseError(() => decode([bytes('5\r\nhello!\r\n0\r\n\r\n')]), /chunk data longer than its size/);
    expectParseError(() => decode(byteByByte(bytes('5\r\nhello!\r\n0\r\n\r\n'))), /longer than its size/);
  });

  it('when a chunk size line exceeds 4 KiB then it is an Http1ParseError, even before its LF arrives', () => {
    const fits = `1;${'x'.repeat(4096 - 4)}\r\nz\r\n0\r\n\r\n`;
    expect(decode([bytes(fits)])).toMatchObject({ body: 'z', done: true });
    expectParseError(() => decode([bytes(`1;${'x'.repeat(4096 - 3)}\r\nz\r\n0\r\n\r\n`)]), /too long/);
    const pieces = Array.from({ length: 10 }, () => bytes('x'.repeat(500)));
    expectParseError(() => decode([bytes('1;'), ...pieces]), /too long/);
  });

  it('when the trailer section exceeds 16 KiB then it is an Http1ParseError', () => {
    const trailer = `X-T: ${'t'.repeat(1000)}\r\n`;
    expect(decode([bytes(`0\r\n${trailer.repeat(15)}\r\n`)]).done).toBe(true);
    expectParseError(() => decode([bytes(`0\r\n${trailer.repeat(17)}\r\n`)]), /trailer section too long/);
    expectParseError(() => decode([bytes(`0\r\nX-T: ${'t'.repeat(17 * 1024)}`)]), /too long/);
  });

  // The 4 KiB bound is for chunk size lines; a trailer field is bounded by the section's 16 KiB.
  it('when one trailer field is longer than 4 KiB but the section fits in 16 KiB then it is accepted', () => {
    expect(decode([bytes(`0\r\nX-T: ${'t'.repeat(5000)}\r\n\r\n`)])).toMatchObject({ body: '', done: true });
  });

  it('when the trailer section with its CRLFs is exactly 16 KiB then it is accepted, one byte more is an Http1ParseError', () => {
    // 'X-T: ' + n bytes + CRLF, then the final CRLF: n + 9 bytes in all.
    const section = (n: number) => `0\r\nX-T: ${'t'.repeat(n)}\r\n\r\n`;
    expect(decode([bytes(section(16 * 1024 - 9))]).done).toBe(true);
    expectParseError(() => decode([bytes(section(16 * 1024 - 8))]), /trailer section too long/);
  });
});

describe('ResponseParser', () => {
  const LENGTH_RESPONSE =
    'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 15\r\n\r\nhi\r\n\r\nthere\xff\x00\r\n';
  const CHUNKED_RESPONSE =
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n' +
    '5;name="v"\r\nhello\r\n' +
    '1B\r\nABCDEFGHIJKLMNOPQRSTUVWXYZ!\r\n' +
    '00a ; ext\r\n\r\n\r\n\r\n\r\n\xff\xfe\r\n' +
    '0\r\nX-Checksum: abc\r\n\r\n';

  describe('a Content-Length response', () => {
    it('when it arrives in one piece then head, body and completion are reported in order', () => {
      const { parser, trace } = parse([bytes(LENGTH_RESPONSE)]);
      expect(trace).toEqual([
        {
          kind: 'head',
          head: {
            statusCode: 200,
            statusMessage: 'OK',
            minor: 1,
            rawHeaders: ['Content-Type', 'application/octet-stream', 'Content-Length', '15'],
            framing: { kind: 'length', length: 15 },
            keepAlive: true,
          },
        },
        { kind: 'body', data: 'hi\r\n\r\nthere\xff\x00\r\n' },
        { kind: 'complete' },
      ]);
      expect(parser.complete).toBe(true);
      expect(parser.extraBytes).toBe(0);
    });

    it('when it is split at every offset, every pair of offsets or byte by byte then the events are identical', () => {
      const trace = expectSplitInvariant(bytes(LENGTH_RESPONSE));
      expect(trace.map((event) => event.kind)).toEqual(['head', 'body', 'complete']);
      expect(bodyOf(trace)).toBe('hi\r\n\r\nthere\xff\x00\r\n');
    });

    it("when Content-Length is '5, 5' then the body is five bytes", () => {
      const { parser, trace } = parse([bytes('HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello')]);
      expect(bodyOf(trace)).toBe('hello');
      expect(parser.complete).toBe(true);
    });

    it("when Content-Length is '5, 6', '-1' or 'abc' then it is an Http1ParseError", () => {
      for (const value of ['5, 6', '-1', 'abc']) {
        const { events } = record();
        const parser = new ResponseParser(events);
        parser.reset('GET');
        expectParseError(
          () => parser.execute(bytes(`HTTP/1.1 200 OK\r\nContent-Length: ${value}\r\n\r\nhello`)),
          /content-length/,
        );
      }
    });

    it('when Content-Length is 0 then the response completes with its head and no body', () => {
      const { parser, trace } = parse([bytes('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')]);
      expect(trace.map((event) => event.kind)).toEqual(['head', 'complete']);
      expect(parser.complete).toBe(true);
    });

    it('when the connection ends mid-body then end() throws and completion is never reported', () => {
      const { parser, trace } = parse([bytes('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello')]);
      expect(parser.complete).toBe(false);
      expectParseError(() => parser.end(), /response body cut short/);
      expect(trace.map((event) => event.kind)).toEqual(['head', 'body']);
    });
  });

  describe('a chunked response', () => {
    const DECODED = 'hello' + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ!' + '\r\n\r\n\r\n\r\n\xff\xfe';

    it('when it arrives in one piece then the decoded body is reported and the trailers are dropped', () => {
      const { parser, trace } = parse([bytes(CHUNKED_RESPONSE)]);
      expect(headsOf(trace)).toMatchObject([{ framing: { kind: 'chunked' }, keepAlive: true }]);
      expect(bodyOf(trace)).toBe(DECODED);
      expect(trace[trace.length - 1]).toEqual({ kind: 'complete' });
      expect(parser.complete).toBe(true);
      expect(parser.extraBytes).toBe(0);
    });

    it('when it is split at every offset, every pair of offsets or byte by byte then the events are identical', () => {
      const trace = expectSplitInvariant(bytes(CHUNKED_RESPONSE));
      expect(trace.map((event) => event.kind)).toEqual(['head', 'body', 'complete']);
      expect(bodyOf(trace)).toBe(DECODED);
    });

    it('when chunked framing is malformed then execute throws an Http1ParseError', () => {
      const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
      for (const [body, message] of [
        ['zz\r\nhello\r\n0\r\n\r\n', /invalid chunk size line/],
        ['5\nhello\r\n0\r\n\r\n', /bare CR or LF/],
        ['5\r\nhello!!\r\n0\r\n\r\n', /longer than its size/],
        [`5;${'e'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`, /too long/],
      ] as const) {
        expectParseError(() => parse([bytes(head + body)]), message);
        expectParseError(() => parse(byteByByte(bytes(head + body))), message);
      }
    });

    it('when the connection ends before the last chunk then end() throws', () => {
      const { parser } = parse([
        bytes('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n'),
      ]);
      expectParseError(() => parser.end(), /response body cut short/);
    });

    it('when Transfer-Encoding and Content-Length are both present then the body is read as chunked, not keep-alive', () => {
      const wire = bytes(
        'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      );
      const trace = expectSplitInvariant(wire);
      expect(headsOf(trace)).toMatchObject([{ framing: { kind: 'chunked' }, keepAlive: false }]);
      expect(bodyOf(trace)).toBe('hello');
    });
  });

  describe('a close-delimited response', () => {
    it('when there is neither Content-Length nor Transfer-Encoding then the body runs until end() and is not keep-alive', () => {
      const { parser, trace } = parse([
        bytes('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, '),
        bytes('part two'),
      ]);
      expect(parser.complete).toBe(false);
      expect(trace.map((event) => event.kind)).not.toContain('complete');
      parser.end();
      expect(parser.complete).toBe(true);
      expect(headsOf(trace)).toMatchObject([{ framing: { kind: 'close' }, keepAlive: false }]);
      expect(bodyOf(trace)).toBe('part one, part two');
      expect(trace[trace.length - 1]).toEqual({ kind: 'complete' });
    });

    it('when it is split anywhere then the events are identical once end() is called', () => {
      const trace = expectSplitInvariant(
        bytes('HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody\r\n\r\nmore'),
        'GET',
        true,
      );
      expect(bodyOf(trace)).toBe('body\r\n\r\nmore');
    });

    it('when the close-delimited body is empty then end() completes it without a body event', () => {
      const { parser, trace } = parse([bytes('HTTP/1.1 200 OK\r\n\r\n')]);
      parser.end();
      expect(trace.map((event) => event.kind)).toEqual(['head', 'complete']);
    });

    it('when Transfer-Encoding does not end in chunked then the raw bytes are the body until end()', () => {
      const raw = '5\r\nhello\r\n0\r\n\r\n';
      const { parser, trace } = parse([bytes(`HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n${raw}`)]);
      expect(parser.complete).toBe(false);
      parser.end();
      expect(headsOf(trace)).toMatchObject([{ framing: { kind: 'close' }, keepAlive: false }]);
      expect(bodyOf(trace)).toBe(raw);
    });
  });

  describe('responses without a body', () => {
    it('when the request was HEAD then Content-Length is ignored and the response completes with its head', () => {
      const { parser, trace } = parse([bytes('HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n')], 'HEAD');
      expect(trace.map((event) => event.kind)).toEqual(['head', 'complete']);
      expect(headsOf(trace)).toMatchObject([{ framing: { kind: 'none' }, keepAlive: true }]);
      expect(parser.complete).toBe(true);
      parser.end();
    });

    it('when the request was HEAD and the answer is chunked then no chunked body is expected', () => {
      const { parser, trace } = parse(
        [bytes('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')],
        'HEAD',
      );
      expect(trace.map((event) => event.kind)).toEqual(['head', 'complete']);
      expect(parser.complete).toBe(true);
    });

    it('when the status is 204 or 304 then Content-Length is ignored and following bytes are extra, not body', () => {
      for (const status of ['204 No Content', '304 Not Modified']) {
        const { parser, trace } = parse([bytes(`HTTP/1.1 ${status}\r\nContent-Length: 5\r\n\r\nhello`)]);
        expect(trace.map((event) => event.kind)).toEqual(['head', 'complete']);
        expect(headsOf(trace)).toMatchObject([{ framing: { kind: 'none' }, keepAlive: true }]);
        expect(parser.extraBytes).toBe(5);
      }
    });
  });

  describe('informational responses', () => {
    const INTERIM =
      'HTTP/1.1 100 Continue\r\n\r\n' +
      'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n' +
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

    it('when 100 and 103 precede a final 200 then only the 200 is reported', () => {
      const { parser, trace } = parse([bytes(INTERIM)]);
      expect(headsOf(trace)).toMatchObject([{ statusCode: 200, rawHeaders: ['Content-Length', '2'] }]);
      expect(bodyOf(trace)).toBe('ok');
      expect(parser.complete).toBe(true);
    });

    it('when the interim and final responses are split anywhere then the events are identical', () => {
      const trace = expectSplitInvariant(bytes(INTERIM));
      expect(headsOf(trace).map((head) => head.statusCode)).toEqual([200]);
    });

    it('when only an interim response has arrived then nothing is reported and the response is not complete', () => {
      const { parser, trace } = parse([bytes('HTTP/1.1 100 Continue\r\n\r\n')]);
      expect(trace).toEqual([]);
      expect(parser.complete).toBe(false);
      expectParseError(() => parser.end(), /before a complete response head/);
    });

    it('when the upstream answers 101 Switching Protocols then it is an Http1ParseError', () => {
      const wire = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';
      expectParseError(() => parse([bytes(wire)]), /101/);
      expectParseError(() => parse([bytes(wire)], 'HEAD'), /101/);
    });

    it('when 10 informational responses precede the final one then it is read, an 11th is an Http1ParseError', () => {
      const final = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
      const { parser, trace } = parse([bytes('HTTP/1.1 100 Continue\r\n\r\n'.repeat(10) + final)]);
      expect(headsOf(trace).map((head) => head.statusCode)).toEqual([200]);
      expect(bodyOf(trace)).toBe('ok');
      expect(parser.complete).toBe(true);
      expectParseError(
        () => parse([bytes('HTTP/1.1 100 Continue\r\n\r\n'.repeat(11) + final)]),
        /more than 10 informational responses/,
      );
    });

    it('when an interim response is malformed then it is an Http1ParseError', () => {
      expectParseError(
        () => parse([bytes('HTTP/1.1 103 Early Hints\r\nBad Name: x\r\n\r\n')]),
        /header name/,
      );
    });

    // `untouched` means no byte of the response arrived: a caller that retried
    // untouched requests must not resend one the upstream already acknowledged.
    it('when a 100 Continue has arrived then the parser is no longer untouched', () => {
      const { parser } = parse([bytes('HTTP/1.1 100 Continue\r\n\r\n')]);
      expect(parser.untouched).toBe(false);
    });
  });

  describe('malformed heads', () => {
    it('when a header is folded, badly named or holds a control character then it is an Http1ParseError', () => {
      for (const [line, message] of [
        ['X-A: a\r\n b', /obsolete line folding/],
        ['X-A: a\r\n\tb', /obsolete line folding/],
        ['Bad Name: x', /invalid header name/],
        ['X-A: a\x01b', /invalid character/],
        ['X-A: a\x7f', /invalid character/],
        ['X-A: a\rb', /invalid character/],
        ['X-A: a\nb', /invalid character/],
      ] as const) {
        const wire = bytes(`HTTP/1.1 200 OK\r\n${line}\r\nContent-Length: 0\r\n\r\n`);
        expectParseError(() => parse([wire]), message);
        expectParseError(() => parse(byteByByte(wire)), message);
      }
    });

    it('when the status line is invalid then it is an Http1ParseError', () => {
      for (const line of ['HTTP/1.1 OK', 'HTTP/2 200 OK', 'SSH-2.0-OpenSSH_9.6', '<html>']) {
        expectParseError(() => parse([bytes(`${line}\r\nContent-Length: 0\r\n\r\n`)]), /invalid status line/);
      }
    });

    it('when a head without its end exceeds MAX_HEAD_BYTES then execute throws as soon as it does', () => {
      const { events } = record();
      const parser = new ResponseParser(events);
      parser.reset('GET');
      const piece = bytes('a'.repeat(1024));
      parser.execute(bytes('HTTP/1.1 200 OK\r\nX-Big: '));
      let fed = 'HTTP/1.1 200 OK\r\nX-Big: '.length;
      while (fed + piece.length <= MAX_HEAD_BYTES) {
        parser.execute(piece);
        fed += piece.length;
      }
      expectParseError(() => parser.execute(piece), new RegExp(`larger than ${MAX_HEAD_BYTES} bytes`));
    });

    it('when a complete head is larger than MAX_HEAD_BYTES then it is an Http1ParseError, at the limit it is accepted', () => {
      const atLimit = bytes(`${headOfSize(MAX_HEAD_BYTES)}\r\n\r\n`);
      expect(parse([atLimit]).parser.complete).toBe(true);
      const over = bytes(`${headOfSize(MAX_HEAD_BYTES + 1)}\r\n\r\n`);
      expectParseError(() => parse([over]), /larger than/);
      expectParseError(() => parse(splitAt(over, 1000, 40000)), /larger than/);
    });

    // Once bytes are pending, only the new bytes up to the head's limit are
    // searched for the CRLF CRLF: after a small first piece that is nearly all of them.
    it('when a head at the size limit arrives after a first piece of a few bytes then it is still accepted', () => {
      const atLimit = bytes(`${headOfSize(MAX_HEAD_BYTES)}\r\n\r\n`);
      for (const split of [1, 2, 7]) {
        expect({ split, complete: parse(splitAt(atLimit, split)).parser.complete }).toEqual({
          split,
          complete: true,
        });
      }
    });

    // Pending bytes of an incomplete head may hold up to 3 bytes of its final
    // CRLF CRLF: the limit must not depend on where the head was split.
    it('when a head at the size limit is split inside its final CRLF CRLF then it is still accepted', () => {
      const atLimit = bytes(`${headOfSize(MAX_HEAD_BYTES)}\r\n\r\n`);
      for (const split of [1, 2, 3]) {
        expect(parse(splitAt(atLimit, MAX_HEAD_BYTES + split)).parser.complete).toBe(true);
      }
    });
  });

  describe('end()', () => {
    // reset() keeps the previous response's framing: end() must go by the phase.
    it('when reset() follows a close-delimited response then end() before the next head still throws', () => {
      const { parser, trace } = parse([bytes('HTTP/1.1 200 OK\r\n\r\nuntil close')]);
      parser.end();
      parser.reset('GET');
      parser.execute(bytes('HTTP/1.1 200 OK\r\nContent-'));
      expectParseError(() => parser.end(), /connection closed before a complete response head/);
      expect(parser.complete).toBe(false);
      expect(trace.filter((event) => event.kind === 'complete')).toHaveLength(1);
    });

    it('when nothing or only part of the head has arrived then end() throws', () => {
      expectParseError(() => parse([]).parser.end(), /connection closed before a complete response head/);
      expectParseError(() => parse([bytes('HTTP/1.1 200 OK\r\nContent-')]).parser.end(), /before a complete/);
      expectParseError(() => parse([bytes('HTTP/1.1 200 OK\r\n\r')]).parser.end(), /before a complete/);
    });

    it('when the response is already complete then end() does nothing', () => {
      const { parser, trace } = parse([bytes('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx')]);
      parser.end();
      parser.end();
      expect(trace.filter((event) => event.kind === 'complete')).toHaveLength(1);
    });
  });

  describe('state and extra bytes', () => {
    it('when reset() has not been called then the parser is complete, untouched, and counts every byte as extra', () => {
      const { events, trace } = record();
      const parser = new ResponseParser(events);
      expect(parser.complete).toBe(true);
      expect(parser.untouched).toBe(true);
      parser.execute(bytes('HTTP/1.1 200 OK\r\n\r\n'));
      expect(parser.extraBytes).toBe(19);
      expect(trace).toEqual([]);
    });

    it('when reset() is called then the parser is untouched until the first byte arrives', () => {
      const { events } = record();
      const parser = new ResponseParser(events);
      parser.reset('GET');
      expect(parser.untouched).toBe(true);
      expect(parser.complete).toBe(false);
      parser.execute(Buffer.alloc(0));
      expect(parser.untouched).toBe(true);
      parser.execute(bytes('H'));
      expect(parser.untouched).toBe(false);
      parser.execute(bytes('TTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n'));
      expect(parser.untouched).toBe(false);
      expect(parser.complete).toBe(false);
    });

    it('when bytes follow a complete response then they are counted in extraBytes and not delivered', () => {
      const { parser, trace } = parse([bytes('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA')]);
      expect(bodyOf(trace)).toBe('hello');
      expect(parser.complete).toBe(true);
      expect(parser.extraBytes).toBe(5);
      parser.execute(bytes('more'));
      expect(parser.extraBytes).toBe(9);
      expect(trace.map((event) => event.kind)).toEqual(['head', 'body', 'complete']);
    });

    it('when bytes follow the last chunk and trailers then they are counted in extraBytes', () => {
      const { parser, trace } = parse([
        bytes('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\ngarbage'),
      ]);
      expect(bodyOf(trace)).toBe('ok');
      expect(parser.extraBytes).toBe(7);
    });
  });

  describe('keep-alive reuse', () => {
    const FIRST = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst';
    const SECOND = 'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nsecond\r\n0\r\n\r\n';

    it('when reset() is called between responses then each is parsed in turn, HEAD included', () => {
      const { events, trace } = record();
      const parser = new ResponseParser(events);
      parser.reset('GET');
      parser.execute(bytes(FIRST));
      expect(parser.complete).toBe(true);
      parser.reset('HEAD');
      expect(parser.complete).toBe(false);
      parser.execute(bytes('HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n'));
      expect(parser.complete).toBe(true);
      parser.reset('GET');
      for (const piece of byteByByte(bytes(SECOND))) parser.execute(piece);
      expect(parser.complete).toBe(true);
      expect(parser.extraBytes).toBe(0);
      expect(merged(trace).map((event) => (event.kind === 'head' ? event.head.statusCode : event))).toEqual([
        200,
        { kind: 'body', data: 'first' },
        { kind: 'complete' },
        200,
        { kind: 'complete' },
        201,
        { kind: 'body', data: 'second' },
        { kind: 'complete' },
      ]);
    });

    it('when a second response arrives in the same buffer as the end of the first then it is extra, not parsed', () => {
      const { parser, trace } = parse([
        bytes(FIRST.slice(0, 30)),
        bytes(FIRST.slice(30) + SECOND.slice(0, 20)),
      ]);
      parser.execute(bytes(SECOND.slice(20)));
      expect(headsOf(trace).map((head) => head.statusCode)).toEqual([200]);
      expect(bodyOf(trace)).toBe('first');
      expect(parser.extraBytes).toBe(SECOND.length);
      // The bytes came before the next request was sent, so they cannot be its
      // answer: reset() starts clean, and the caller must have read extraBytes
      // (and dropped the connection) before calling it.
      parser.reset('GET');
      expect(parser.extraBytes).toBe(0);
      expect(parser.untouched).toBe(true);
      expect(headsOf(trace)).toHaveLength(1);
      parser.execute(bytes(SECOND));
      expect(headsOf(trace).map((head) => head.statusCode)).toEqual([200, 201]);
      expect(parser.complete).toBe(true);
    });

    // A pool releases the connection in onComplete and may hand it straight to
    // the next request (reset()): bytes after a complete response must already
    // be counted as extra then and never be parsed as the next answer.
    it('when onComplete resets the parser for the next request then bytes already after the response are not parsed', () => {
      const statuses: number[] = [];
      const extraAtComplete: number[] = [];
      const parser: ResponseParser = new ResponseParser({
        onHead(head) {
          statuses.push(head.statusCode);
        },
        onBody() {},
        onComplete() {
          extraAtComplete.push(parser.extraBytes);
          if (extraAtComplete.length === 1) parser.reset('GET');
        },
      });
      parser.reset('GET');
      parser.execute(bytes(FIRST + SECOND));
      expect(statuses).toEqual([200]);
      expect(extraAtComplete).toEqual([SECOND.length]);
    });
  });

  describe('HTTP/1.0 connection management', () => {
    // RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty
    // framing; the connection is closed after it.
    it('when HTTP/1.0 answers with Transfer-Encoding then it is not keep-alive', () => {
      const head = parseResponseHead(
        'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked',
        'GET',
      );
      expect(head.keepAlive).toBe(false);
    });

    // RFC 9112 9.3: the close option always wins.
    it('when HTTP/1.0 says connection: keep-alive, close then it is not keep-alive', () => {
      const head = parseResponseHead(
        'HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1',
        'GET',
      );
      expect(head.keepAlive).toBe(false);
    });
  });
});
