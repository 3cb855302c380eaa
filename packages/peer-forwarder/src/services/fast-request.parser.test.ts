import { readFastRequest } from './fast-request.parser';

const LIMITS = { maxHeadBytes: 16 * 1024, maxBodyBytes: 64 * 1024 };
/** `handoff`, or the served request's body length and close flag. */
type FastRow = 'handoff' | [number, boolean];
const read = (text: string) => readFastRequest(Buffer.from(text, 'latin1'), LIMITS);

describe('readFastRequest', () => {
  it('when a plain request with one Host and a Content-Length arrives then it is served with that body length', () => {
    const request = read('POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello');
    expect(request).toMatchObject({ kind: 'serve', headBytes: 48, bodyLength: 5, close: false });
  });

  // Issue 17: a Content-Length before Transfer-Encoding must never frame the request.
  it('when Content-Length comes before or after Transfer-Encoding: chunked then the connection is handed off', () => {
    expect(
      read('POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'),
    ).toEqual({
      kind: 'handoff',
    });
    expect(
      read('POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n'),
    ).toEqual({
      kind: 'handoff',
    });
  });

  it('when the method is one llhttp refuses or the head holds a tab then the connection is handed off', () => {
    for (const text of [
      'FOO / HTTP/1.1\r\nHost: x\r\n\r\n',
      'get / HTTP/1.1\r\nHost: x\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\t\r\n\r\nabc',
    ])
      expect(read(text)).toEqual({ kind: 'handoff' });
  });

  it('when the peer asks to close then the request is served and marked close', () => {
    expect(read('GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n')).toMatchObject({
      kind: 'serve',
      close: true,
    });
  });
});

// Each row pins one decision of the framing (found by mutation testing:
// docs/testing.md); `serve` rows give the body length and the close flag.
describe('readFastRequest, decision by decision', () => {
  const HEAD = 'GET / HTTP/1.1\r\nHost: x'; // 23 bytes before its CRLF CRLF
  const rows: Array<[string, string, { maxHeadBytes?: number; maxBodyBytes?: number }, FastRow]> = [
    ['a head not complete yet', 'GET / HTTP/1.1\r\nHost: x\r\n', {}, 'handoff'],
    ['no Host but another four-letter header', 'GET / HTTP/1.1\r\nDate: x\r\n\r\n', {}, 'handoff'],
    ['Host and another four-letter header', 'GET / HTTP/1.1\r\nFrom: a\r\nHost: x\r\n\r\n', {}, [0, false]],
    ['a head of exactly the largest size', `${HEAD}\r\n\r\n`, { maxHeadBytes: 23 }, [0, false]],
    ['a head one byte over the largest size', `${HEAD}\r\n\r\n`, { maxHeadBytes: 22 }, 'handoff'],
    ['a tab in the body only', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n\t', {}, [1, false]],
    ['a head line without a colon', 'GET / HTTP/1.1\r\nHost: x\r\nnot a header\r\n\r\n', {}, 'handoff'],
    [
      'a body of exactly the largest size',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n',
      { maxBodyBytes: 10 },
      [10, false],
    ],
    [
      'a body one byte over the largest size',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n',
      { maxBodyBytes: 10 },
      'handoff',
    ],
    ['HTTP/1.0', 'GET / HTTP/1.0\r\nHost: x\r\n\r\n', {}, 'handoff'],
    ['an asterisk target', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n', {}, 'handoff'],
    ['an absolute target', 'GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n', {}, 'handoff'],
    ['CONNECT', 'CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n', {}, 'handoff'],
    ...['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'].map(
      (method): [string, string, object, FastRow] => [
        `method ${method}`,
        `${method} / HTTP/1.1\r\nHost: x\r\n\r\n`,
        {},
        [0, false],
      ],
    ),
    ['no Host', 'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n', {}, 'handoff'],
    ['two Hosts', 'GET / HTTP/1.1\r\nHost: x\r\nhost: y\r\n\r\n', {}, 'handoff'],
    [
      'Expect',
      'POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n',
      {},
      'handoff',
    ],
    [
      'Upgrade',
      'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      {},
      'handoff',
    ],
    [
      'Transfer-Encoding alone',
      'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n',
      {},
      'handoff',
    ],
    [
      'another header of 17 letters',
      'GET / HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: x\r\n\r\n',
      {},
      [0, false],
    ],
    [
      'another header of 14 letters',
      'GET / HTTP/1.1\r\nHost: x\r\nAccept-Charset: x\r\n\r\n',
      {},
      [0, false],
    ],
    [
      'another header of 10 letters saying close',
      'GET / HTTP/1.1\r\nHost: x\r\nKeep-Alive: close\r\n\r\n',
      {},
      [0, false],
    ],
    ['Connection: close', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', {}, [0, true]],
    ['Connection: close, TE', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close, TE\r\n\r\n', {}, [0, true]],
    ['Connection: closed', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n', {}, [0, false]],
    ['Connection: keep-alive', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n', {}, [0, false]],
    [
      'a Content-Length of two digits',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n',
      {},
      [12, false],
    ],
    [
      'a Content-Length with a trailing letter',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1a\r\n\r\n',
      {},
      'handoff',
    ],
    [
      'a Content-Length with a leading letter',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: a1\r\n\r\n',
      {},
      'handoff',
    ],
    [
      'a repeated Content-Length',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n',
      {},
      'handoff',
    ],
  ];
  it.each(rows)(
    'when the request has %s then the decision is as expected',
    (_what, text, limits, expected) => {
      const got = readFastRequest(Buffer.from(text, 'latin1'), { ...LIMITS, ...limits });
      if (expected === 'handoff') expect(got).toEqual({ kind: 'handoff' });
      else expect(got).toMatchObject({ kind: 'serve', bodyLength: expected[0], close: expected[1] });
    },
  );
});
