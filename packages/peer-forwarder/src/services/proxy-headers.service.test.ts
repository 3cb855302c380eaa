import { downstreamResponseHeaders, loggablePath, upstreamRequestHeaders } from './proxy-headers.service';

const pairs = (flat: string[]) => {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
};
const names = (flat: string[]) => pairs(flat).map(([n]) => n.toLowerCase());
const client = { address: '10.0.0.2', proto: 'http' as const };

describe('upstreamRequestHeaders', () => {
  it('when a peer sends x-ivis-cert-serial in any case, any number of times, then none is forwarded', () => {
    const out = upstreamRequestHeaders(
      ['X-IVIS-Cert-Serial', '{ serialNumber 1, }', 'accept', '*/*', 'x-ivis-cert-serial', '2'],
      client,
    );
    expect(names(out)).not.toContain('x-ivis-cert-serial');
    expect(pairs(out)).toContainEqual(['accept', '*/*']);
  });

  it('when a peer spells the identity header with underscores, in any case, then it is not forwarded either', () => {
    const out = upstreamRequestHeaders(
      ['x_ivis_cert_serial', '1', 'X_Ivis-Cert_SERIAL', '2', 'x_forwarded_host', 'evil', 'my_header', 'kept'],
      client,
    );
    expect(names(out).map((n) => n.replace(/_/g, '-'))).not.toContain('x-ivis-cert-serial');
    expect(names(out)).not.toContain('x_forwarded_host');
    expect(pairs(out)).toContainEqual(['my_header', 'kept']);
  });

  it('when a peer declares its body framing then it is not copied: the upstream client frames the body it sends', () => {
    const out = upstreamRequestHeaders(
      ['Content-Length', '5', 'content-length', '5', 'Transfer-Encoding', 'chunked', 'accept', '*/*'],
      client,
    );
    expect(names(out)).not.toContain('content-length');
    expect(names(out)).not.toContain('transfer-encoding');
    expect(pairs(out)).toContainEqual(['accept', '*/*']);
  });

  it('when hop-by-hop headers and Connection-declared headers arrive then they are dropped', () => {
    const out = upstreamRequestHeaders(
      [
        'Connection',
        'keep-alive, X-Secret-Hop',
        'Keep-Alive',
        'timeout=5',
        'Transfer-Encoding',
        'chunked',
        'TE',
        'trailers',
        'Upgrade',
        'h2c',
        'Proxy-Authorization',
        'Basic x',
        'Proxy-Connection',
        'keep-alive',
        'x-secret-hop',
        'a',
        'Expect',
        '100-continue',
        'Content-Type',
        'application/json',
      ],
      client,
    );
    expect(names(out)).toEqual(['content-type', 'x-forwarded-for', 'x-forwarded-proto']);
  });

  it('when the peer sends Host and X-Forwarded-For then Host moves to X-Forwarded-Host and the source is appended', () => {
    const out = upstreamRequestHeaders(
      [
        'Host',
        '10.0.0.1:10329',
        'X-Forwarded-For',
        '1.1.1.1',
        'x-forwarded-for',
        '2.2.2.2',
        'X-Forwarded-Proto',
        'https',
      ],
      client,
    );
    expect(pairs(out)).toEqual([
      ['x-forwarded-for', '1.1.1.1, 2.2.2.2, 10.0.0.2'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-host', '10.0.0.1:10329'],
    ]);
  });
});

describe('downstreamResponseHeaders', () => {
  it('when the upstream answers with framing and hop-by-hop headers then only end-to-end ones are kept', () => {
    const out = downstreamResponseHeaders([
      Buffer.from('Content-Type'),
      Buffer.from('application/json'),
      Buffer.from('Transfer-Encoding'),
      Buffer.from('chunked'),
      Buffer.from('Connection'),
      Buffer.from('close, X-Hop'),
      Buffer.from('X-Hop'),
      Buffer.from('1'),
      Buffer.from('Keep-Alive'),
      Buffer.from('timeout=5'),
      Buffer.from('Set-Cookie'),
      Buffer.from('a=1'),
      Buffer.from('Set-Cookie'),
      Buffer.from('b=2'),
    ]);
    expect(pairs(out)).toEqual([
      ['Content-Type', 'application/json'],
      ['Set-Cookie', 'a=1'],
      ['Set-Cookie', 'b=2'],
    ]);
  });
});

describe('header hygiene, edge by edge', () => {
  it('when a header value names another header then only a Connection header declares it hop-by-hop', () => {
    expect(
      upstreamRequestHeaders(['Accept', 'x-custom', 'X-Custom', '1'], {
        address: '10.0.0.1',
        proto: 'https',
      }),
    ).toEqual([
      'Accept',
      'x-custom',
      'X-Custom',
      '1',
      'x-forwarded-for',
      '10.0.0.1',
      'x-forwarded-proto',
      'https',
    ]);
    expect(
      downstreamResponseHeaders(['Keep-Alive', 'x-next', 'X-Next', '1', 'Content-Type', 'text/plain']),
    ).toEqual(['X-Next', '1', 'Content-Type', 'text/plain']);
  });

  it('when the upstream sends no Connection header then its headers pass unchanged, bytes read as latin1', () => {
    expect(downstreamResponseHeaders([Buffer.from('X-A'), Buffer.from([0x63, 0xe9]), 'Date', 'd'])).toEqual([
      'X-A',
      'c\u00e9',
      'Date',
      'd',
    ]);
  });
});

describe('loggablePath', () => {
  it('when the url has a query string then it is cut off', () => {
    expect(loggablePath('/jobs/_search?q=secret&access_token=abc')).toBe('/jobs/_search');
    expect(loggablePath('/')).toBe('/');
  });

  it('when a path segment is a long hex token then it is masked', () => {
    const token = 'ab'.repeat(20);
    expect(loggablePath(`/${token}/rest/files/job/file/5?x=1`)).toBe('/[token]/rest/files/job/file/5');
    expect(loggablePath(`/a/${token}`)).toBe('/a/[token]');
    expect(loggablePath('/index/_doc/AbC123xyz')).toBe('/index/_doc/AbC123xyz');
  });
});
