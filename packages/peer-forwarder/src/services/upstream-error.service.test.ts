import { classifyUpstreamError } from './upstream-error.service';

const timeouts = { connectMs: 1000, headersMs: 2000 };
const coded = (code: string, message = 'boom', cause?: unknown) =>
  Object.assign(new Error(message), { code, ...(cause ? { cause } : {}) });

describe('classifyUpstreamError', () => {
  it('when the upstream is slow to connect or to answer then it is a 504 upstream_timeout', () => {
    const connect = classifyUpstreamError(coded('UPSTREAM_CONNECT_TIMEOUT'), timeouts);
    expect(connect).toMatchObject({ status: 504, kind: 'timeout', body: { code: 'upstream_timeout' } });
    expect(connect.body.error).toContain('1000 ms');
    const headers = classifyUpstreamError(coded('UPSTREAM_HEADERS_TIMEOUT'), timeouts);
    expect(headers).toMatchObject({ status: 504, body: { code: 'upstream_timeout' } });
    expect(headers.body.error).toContain('2000 ms');
  });

  it('when the connection is refused then it is a 502 naming the cause', () => {
    const result = classifyUpstreamError(coded('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1'), timeouts);
    expect(result).toMatchObject({ status: 502, kind: 'connect', body: { code: 'upstream_unreachable' } });
    expect(result.body.error).toContain('ECONNREFUSED 127.0.0.1:1');
  });

  it('when TLS verification or the handshake fails then it is a 502 upstream_tls with the reason', () => {
    for (const code of [
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'CERT_HAS_EXPIRED',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
      'EPROTO',
    ]) {
      const result = classifyUpstreamError(coded(code, 'tls says no'), timeouts);
      expect(result).toMatchObject({ status: 502, kind: 'tls', body: { code: 'upstream_tls' } });
      expect(result.body.error).toContain(code);
    }
  });

  it('when a closed connection carries a TLS alert as its cause then the TLS cause wins', () => {
    const result = classifyUpstreamError(
      coded('UPSTREAM_CLOSED', 'other side closed', coded('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE')),
      timeouts,
    );
    expect(result.kind).toBe('tls');
  });

  it('when the upstream resets or the error is unknown then it is a 502 reset or upstream_error', () => {
    expect(classifyUpstreamError(coded('ECONNRESET'), timeouts)).toMatchObject({
      kind: 'reset',
      status: 502,
    });
    expect(classifyUpstreamError(coded('UPSTREAM_CLOSED', 'other side closed'), timeouts).kind).toBe('reset');
    expect(classifyUpstreamError(new Error('weird'), timeouts)).toMatchObject({
      status: 502,
      kind: 'protocol',
      body: { code: 'upstream_error', error: 'upstream request failed: weird' },
    });
  });

  it('when the peer stalled its upload or the forwarder is stopping then the answer does not blame the upstream', () => {
    expect(
      classifyUpstreamError(coded('UPSTREAM_UPLOAD_STALLED', 'peer sent no request body bytes'), timeouts),
    ).toMatchObject({
      status: 408,
      kind: 'peer',
      body: { code: 'peer_timeout', error: 'peer sent no request body bytes' },
    });
    expect(
      classifyUpstreamError(coded('UPSTREAM_POOL_CLOSED', 'forwarder is shutting down'), timeouts),
    ).toMatchObject({
      status: 503,
      kind: 'shutdown',
      body: { code: 'shutting_down' },
    });
  });
});
