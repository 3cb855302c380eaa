/**
 * The differential corpus: request byte streams that the forwarder (fast
 * path plus Node's server behind it) and llhttp must read alike
 * (test/differential.test.ts, docs/forwarder.md "Differential testing
 * against llhttp"). Strings are wire bytes, one character per byte (latin1).
 *
 * Every stream is followed on the wire by {@link END_OF_STREAM}, a closing
 * request, so each connection ends by a close from the server side. A
 * Content-Length never exceeds the bytes that follow it in the stream, so no
 * stream leaves a server waiting for a body.
 */

/** The target of the closing request appended to every stream. */
export const END_URL = '/end-of-stream';
/** The closing request appended to every stream. */
export const END_OF_STREAM = `GET ${END_URL} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;

export interface CorpusEntry {
  name: string;
  /** Wire bytes, one character per byte. */
  bytes: string;
}

const CRLF = '\r\n';
/** A request from its start line and header lines (each without CRLF), and a raw body. */
export const req = (line: string, headers: readonly string[], body = ''): string =>
  `${line}${CRLF}${headers.map((h) => h + CRLF).join('')}${CRLF}${body}`;
const get = (path = '/', extra: readonly string[] = []) => req(`GET ${path} HTTP/1.1`, ['Host: x', ...extra]);
const post = (headers: readonly string[], body: string) =>
  req('POST /p HTTP/1.1', ['Host: x', ...headers], body);
const chunkedPost = (body: string, extra: readonly string[] = []) =>
  post([...extra, 'Transfer-Encoding: chunked'], body);
const CHUNKED_HELLO = '5\r\nhello\r\n0\r\n\r\n';
const INNER = 'GET /inner HTTP/1.1\r\nHost: x\r\n\r\n';

/** A head whose block (without its final CRLF CRLF) is exactly `size` bytes. */
const headOfSize = (size: number): string => {
  const fixed = 'GET /big HTTP/1.1\r\nHost: x\r\nX-Pad: ';
  return `${fixed}${'a'.repeat(size - fixed.length)}\r\n\r\n`;
};

const valid: CorpusEntry[] = [
  { name: 'GET', bytes: get() },
  {
    name: 'GET with query and headers',
    bytes: get('/rest/remote/status?a=1&b=%20c', ['Accept: */*', 'X-Y:z']),
  },
  { name: 'GET with empty header value', bytes: get('/', ['X-Empty:', 'X-Spaces:   ']) },
  { name: 'GET with tab around value', bytes: get('/', ['X-Tab:\tv\t']) },
  { name: 'GET with obs-text in a value', bytes: get('/', ['X-Latin: caf\xe9 \xff']) },
  { name: 'GET with visible punctuation in the target', bytes: get('/a"b<c>d\\e^f`g{h|i}j~k') },
  { name: 'GET with a fragment', bytes: get('/a#frag') },
  { name: 'GET //double', bytes: get('//double/slash') },
  { name: 'GET with empty Host', bytes: req('GET / HTTP/1.1', ['Host:']) },
  { name: 'POST Content-Length', bytes: post(['Content-Length: 5'], 'hello') },
  { name: 'POST Content-Length 0', bytes: post(['Content-Length: 0'], '') },
  { name: 'POST Content-Length with leading zeros', bytes: post(['Content-Length: 005'], 'hello') },
  { name: 'POST Content-Length in upper case', bytes: post(['CONTENT-LENGTH: 5'], 'hello') },
  { name: 'POST body holding CRLF CRLF', bytes: post(['Content-Length: 8'], 'ab\r\n\r\ncd') },
  { name: 'POST body holding a request', bytes: post([`Content-Length: ${INNER.length}`], INNER) },
  { name: 'PUT', bytes: req('PUT /d HTTP/1.1', ['Host: x', 'Content-Length: 2'], 'ok') },
  { name: 'DELETE', bytes: req('DELETE /d HTTP/1.1', ['Host: x']) },
  { name: 'OPTIONS', bytes: req('OPTIONS /d HTTP/1.1', ['Host: x']) },
  { name: 'PATCH', bytes: req('PATCH /d HTTP/1.1', ['Host: x', 'Content-Length: 1'], 'x') },
  { name: 'HEAD', bytes: req('HEAD /d HTTP/1.1', ['Host: x']) },
  { name: 'chunked', bytes: chunkedPost(CHUNKED_HELLO) },
  {
    name: 'chunked, several chunks, hex in both cases',
    bytes: chunkedPost('a\r\n0123456789\r\nA\r\nabcdefghij\r\nB\r\nABCDEFGHIJK\r\n0\r\n\r\n'),
  },
  { name: 'chunked with leading zeros', bytes: chunkedPost('0005\r\nhello\r\n000\r\n\r\n') },
  {
    name: 'chunked with extensions',
    bytes: chunkedPost('5;name=value\r\nhello\r\n3;a="b c";d\r\nabc\r\n0;last\r\n\r\n'),
  },
  {
    name: 'chunked with trailers',
    bytes: chunkedPost('5\r\nhello\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n'),
  },
  { name: 'Transfer-Encoding in upper case', bytes: post(['TRANSFER-ENCODING: CHUNKED'], CHUNKED_HELLO) },
  { name: 'Expect: 100-continue', bytes: post(['Expect: 100-continue', 'Content-Length: 5'], 'hello') },
  { name: 'Connection: close', bytes: get('/', ['Connection: close']) },
  { name: 'Connection: keep-alive, close', bytes: get('/', ['Connection: keep-alive, close']) },
  { name: 'Connection: CLOSE', bytes: get('/', ['Connection: CLOSE']) },
  { name: 'Connection: closed (not close)', bytes: get('/', ['Connection: closed']) },
  { name: 'Connection: x-close', bytes: get('/', ['Connection: x-close']) },
  { name: 'Connection: keep-alive', bytes: get('/', ['Connection: keep-alive']) },
  { name: 'HTTP/1.0', bytes: req('GET /old HTTP/1.0', []) },
  {
    name: 'HTTP/1.0 keep-alive, then another',
    bytes:
      req('GET /a HTTP/1.0', ['Connection: keep-alive']) + req('GET /b HTTP/1.0', ['Connection: keep-alive']),
  },
  { name: 'HTTP/1.0 POST', bytes: req('POST /old HTTP/1.0', ['Content-Length: 3'], 'abc') },
  { name: 'repeated Host', bytes: req('GET / HTTP/1.1', ['Host: a', 'Host: b']) },
  { name: 'no Host', bytes: req('GET / HTTP/1.1', ['Accept: */*']) },
  { name: 'absolute-form target', bytes: get('http://evil.example/x') },
  { name: 'asterisk-form OPTIONS', bytes: req('OPTIONS * HTTP/1.1', ['Host: x']) },
  {
    name: 'x-ivis-cert-serial from the peer',
    bytes: get('/', ['X-Ivis-Cert-Serial: forged', 'x_ivis_cert_serial: forged']),
  },
  { name: 'head at 8 KiB', bytes: headOfSize(8192) },
  { name: 'head just under 16 KiB', bytes: headOfSize(16_300) },
  { name: 'head at 16 KiB', bytes: headOfSize(16_384) },
  { name: 'head just over 16 KiB', bytes: headOfSize(16_385) },
  { name: 'body of 64 KiB', bytes: post(['Content-Length: 65536'], 'b'.repeat(65_536)) },
  { name: 'body of 64 KiB + 1', bytes: post(['Content-Length: 65537'], 'b'.repeat(65_537)) },
];

const pipelined: CorpusEntry[] = [
  { name: 'pipelined GET, POST, GET', bytes: get('/1') + post(['Content-Length: 3'], 'abc') + get('/3') },
  { name: 'pipelined GET then chunked', bytes: get('/1') + chunkedPost(CHUNKED_HELLO) + get('/3') },
  { name: 'pipelined chunked then GET', bytes: chunkedPost(CHUNKED_HELLO) + get('/2') },
  { name: 'pipelined GET, close, GET', bytes: get('/1') + get('/2', ['Connection: close']) + get('/3') },
  { name: 'pipelined with CRLF between', bytes: `${get('/1')}\r\n${get('/2')}` },
  { name: 'leading CRLF', bytes: `\r\n${get('/1')}` },
  { name: 'pipelined GET then malformed', bytes: get('/1') + 'GARBAGE\r\n\r\n' },
  { name: 'pipelined GET then HTTP/1.0', bytes: get('/1') + req('GET /2 HTTP/1.0', []) },
  {
    name: 'pipelined Content-Length shorter than the body',
    bytes: post(['Content-Length: 2'], 'abGET /x HTTP/1.1\r\nHost: x\r\n\r\n'),
  },
];

const smuggling: CorpusEntry[] = [
  {
    name: 'Content-Length then Transfer-Encoding: chunked',
    bytes: post(['Content-Length: 3', 'Transfer-Encoding: chunked'], CHUNKED_HELLO),
  },
  {
    name: 'Transfer-Encoding: chunked then Content-Length',
    bytes: post(['Transfer-Encoding: chunked', 'Content-Length: 3'], CHUNKED_HELLO),
  },
  {
    name: 'Content-Length then chunked, smuggled GET',
    bytes: post(
      ['Content-Length: 4', 'Transfer-Encoding: chunked'],
      '0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
    ),
  },
  {
    name: 'Content-Length 0 then chunked',
    bytes: post(['Content-Length: 0', 'Transfer-Encoding: chunked'], CHUNKED_HELLO),
  },
  { name: 'CL+CL equal', bytes: post(['Content-Length: 3', 'Content-Length: 3'], 'abc') },
  { name: 'CL+CL different', bytes: post(['Content-Length: 3', 'Content-Length: 5'], 'abcde') },
  { name: 'CL list equal', bytes: post(['Content-Length: 3, 3'], 'abc') },
  { name: 'CL list different', bytes: post(['Content-Length: 3, 5'], 'abcde') },
  ...[
    '+3',
    '-1',
    '3 3',
    '0x3',
    '3a',
    ' 3',
    '3\t',
    '',
    '1e1',
    '99999999999999999999',
    '00000000000000000003',
  ].map((value): CorpusEntry => ({
    name: `Content-Length ${JSON.stringify(value)}`,
    bytes: post([`Content-Length: ${value}`], 'abc'),
  })),
  { name: 'Content-Length with space before colon', bytes: post(['Content-Length : 3'], 'abc') },
  { name: 'Content-Length obs-folded', bytes: post(['Content-Length:', ' 3'], 'abc') },
  ...[
    'chunked, identity',
    'identity',
    'identity, chunked',
    'gzip, chunked',
    'chunked, gzip',
    'chunked, chunked',
    'Chunked',
    ' chunked ',
    'chunked\t',
    'xchunked',
    'chunkedx',
    'chunked\xe9',
    'ch\xe9nked',
    'chunked;q=1',
    '',
  ].map((value): CorpusEntry => ({
    name: `Transfer-Encoding ${JSON.stringify(value)} with Content-Length`,
    bytes: post(['Content-Length: 3', `Transfer-Encoding: ${value}`], CHUNKED_HELLO),
  })),
  ...['identity', 'chunked, identity', 'gzip', 'chunked, gzip', 'chunked\xe9'].map((value): CorpusEntry => ({
    name: `Transfer-Encoding ${JSON.stringify(value)} alone`,
    bytes: post([`Transfer-Encoding: ${value}`], CHUNKED_HELLO),
  })),
  {
    name: 'two TE headers: identity, chunked',
    bytes: post(['Transfer-Encoding: identity', 'Transfer-Encoding: chunked'], CHUNKED_HELLO),
  },
  {
    name: 'two TE headers: chunked, identity',
    bytes: post(['Transfer-Encoding: chunked', 'Transfer-Encoding: identity'], CHUNKED_HELLO),
  },
  {
    name: 'two TE headers: chunked, chunked',
    bytes: post(['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], CHUNKED_HELLO),
  },
  {
    name: 'TE with space before colon and CL',
    bytes: post(['Content-Length: 3', 'Transfer-Encoding : chunked'], CHUNKED_HELLO),
  },
  {
    name: 'TE with tab before colon and CL',
    bytes: post(['Content-Length: 3', 'Transfer-Encoding\t: chunked'], CHUNKED_HELLO),
  },
  {
    name: 'Transfer_Encoding (underscore) and CL',
    bytes: post(['Content-Length: 3', 'Transfer_Encoding: chunked'], 'abc'),
  },
  {
    name: 'TE obs-folded after CL',
    bytes: post(['Content-Length: 3', 'Transfer-Encoding: identity', ' chunked'], CHUNKED_HELLO),
  },
  {
    name: 'TE with CL in HTTP/1.0',
    bytes: req('POST /p HTTP/1.0', ['Content-Length: 3', 'Transfer-Encoding: chunked'], CHUNKED_HELLO),
  },
  {
    name: 'TE chunked in HTTP/1.0',
    bytes: req('POST /p HTTP/1.0', ['Transfer-Encoding: chunked'], CHUNKED_HELLO),
  },
];

const chunkSizes: CorpusEntry[] = [
  ...[
    ['size overflow (18 hex digits)', 'ffffffffffffffffff\r\nabc\r\n0\r\n\r\n'],
    ['size of 16 hex digits', '0000000000000005\r\nhello\r\n0\r\n\r\n'],
    ['size 0x5', '0x5\r\nhello\r\n0\r\n\r\n'],
    ['size -5', '-5\r\nhello\r\n0\r\n\r\n'],
    ['size +5', '+5\r\nhello\r\n0\r\n\r\n'],
    ['size with leading space', ' 5\r\nhello\r\n0\r\n\r\n'],
    ['size with trailing space', '5 \r\nhello\r\n0\r\n\r\n'],
    ['size with space before extension', '5 ;ext\r\nhello\r\n0\r\n\r\n'],
    ['empty size line', '\r\nhello\r\n0\r\n\r\n'],
    ['size with bare LF', '5\nhello\r\n0\r\n\r\n'],
    ['size with bare CR', '5\rhello\r\n0\r\n\r\n'],
    ['data longer than size', '5\r\nhelloXX\r\n0\r\n\r\n'],
    ['data without CRLF', '5\r\nhello0\r\n\r\n'],
    ['data with bare LF after', '5\r\nhello\n0\r\n\r\n'],
    ['last chunk with bare LF', '5\r\nhello\r\n0\n\n'],
    ['trailer with bare LF', '5\r\nhello\r\n0\r\nX: 1\n\r\n'],
    ['trailer obs-folded', '5\r\nhello\r\n0\r\nX: 1\r\n 2\r\n\r\n'],
    ['trailer with NUL', '5\r\nhello\r\n0\r\nX: \x001\r\n\r\n'],
    ['extension with NUL', '5;a=\x00\r\nhello\r\n0\r\n\r\n'],
    ['extension with bare CR', '5;a\rb\r\nhello\r\n0\r\n\r\n'],
    ['size G', 'G\r\nhello\r\n0\r\n\r\n'],
  ].map(([name, body]): CorpusEntry => ({ name: `chunked: ${name}`, bytes: chunkedPost(body!) })),
];

/** Characters that are not allowed in names or values, one entry per place. */
const controls: CorpusEntry[] = [
  ...[0x00, 0x01, 0x08, 0x0b, 0x0c, 0x0e, 0x1f, 0x7f].flatMap((code): CorpusEntry[] => {
    const c = String.fromCharCode(code);
    const hex = code.toString(16).padStart(2, '0');
    return [
      { name: `\\x${hex} in a value`, bytes: get('/', [`X-A: a${c}b`]) },
      { name: `\\x${hex} in a name`, bytes: get('/', [`X-${c}A: b`]) },
      { name: `\\x${hex} in the target`, bytes: get(`/a${c}b`) },
    ];
  }),
  { name: 'tab in a name', bytes: get('/', ['X\tA: b']) },
  { name: 'obs-text in a name', bytes: get('/', ['X\xe9: b']) },
  { name: 'obs-text in the target', bytes: get('/caf\xe9') },
  { name: 'space in a name', bytes: get('/', ['X A: b']) },
  { name: 'space before colon', bytes: get('/', ['X-A : b']) },
  { name: 'header without colon', bytes: get('/', ['X-A b']) },
  { name: 'header with empty name', bytes: get('/', [': b']) },
  { name: 'obs-fold', bytes: get('/', ['X-A: a', ' b']) },
  { name: 'obs-fold with tab', bytes: get('/', ['X-A: a', '\tb']) },
  { name: 'obs-fold of Host', bytes: req('GET / HTTP/1.1', ['Host:', ' x']) },
  { name: 'first header line folded', bytes: 'GET / HTTP/1.1\r\n Host: x\r\n\r\n' },
  { name: 'bare LF line ends', bytes: 'GET / HTTP/1.1\nHost: x\n\n' },
  { name: 'bare LF after one header', bytes: 'GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n' },
  { name: 'bare LF ending the head', bytes: 'GET / HTTP/1.1\r\nHost: x\r\n\n' },
  { name: 'bare LF ending the request line', bytes: 'GET / HTTP/1.1\nHost: x\r\n\r\n' },
  { name: 'bare LF in a value', bytes: get('/', ['X-A: a\nb']) },
  { name: 'bare CR in a value', bytes: get('/', ['X-A: a\rb']) },
  { name: 'bare CR ending a header', bytes: 'GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n' },
  { name: 'CR CR LF', bytes: 'GET / HTTP/1.1\r\nHost: x\r\r\n\r\n' },
  { name: 'bare CR ending the head', bytes: 'GET / HTTP/1.1\r\nHost: x\r\n\r' + get('/2') },
];

const requestLines: CorpusEntry[] = [
  ...[
    'GET  / HTTP/1.1',
    'GET /  HTTP/1.1',
    'GET\t/ HTTP/1.1',
    'GET / HTTP/1.1 ',
    ' GET / HTTP/1.1',
    'GET / HTTP/1.2',
    'GET / HTTP/2.0',
    'GET / HTTP/1.01',
    'GET / http/1.1',
    'GET / HTTP/1',
    'GET /',
    'GET / HTTP/0.9',
    'FOO / HTTP/1.1',
    'get / HTTP/1.1',
    'Get / HTTP/1.1',
    'PROPFIND / HTTP/1.1',
    'G\xe9T / HTTP/1.1',
    'CONNECT x:443 HTTP/1.1',
    'PRI * HTTP/2.0',
    'GET a HTTP/1.1',
    'GET ?a HTTP/1.1',
  ].map((line): CorpusEntry => ({
    name: `request line ${JSON.stringify(line)}`,
    bytes: req(line, ['Host: x']),
  })),
];

/** The whole corpus; names are unique. */
export const CORPUS: readonly CorpusEntry[] = [
  ...valid,
  ...pipelined,
  ...smuggling,
  ...chunkSizes,
  ...controls,
  ...requestLines,
];
