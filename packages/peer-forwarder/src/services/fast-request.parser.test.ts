import { readFastRequest } from './fast-request.parser';

const LIMITS = { maxHeadBytes: 16 * 1024, maxBodyBytes: 64 * 1024 };
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
