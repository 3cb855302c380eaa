import { resolvePushUrl } from './push-url';

const route = (host: string, port = 10329) => ({ listen: { host, port } });

describe('resolvePushUrl', () => {
  it('when scheduler.trustedUrlBase is set then it wins', () => {
    expect(resolvePushUrl('http://10.0.0.1:10329', route('0.0.0.0'))).toEqual({
      url: 'http://10.0.0.1:10329',
      source: 'scheduler.trustedUrlBase',
    });
  });

  it('when it is null then the forwarder trusted route of the same file is used, wildcards as loopback', () => {
    expect(resolvePushUrl(null, route('0.0.0.0'))).toEqual({
      url: 'http://127.0.0.1:10329',
      source: 'forwarder.routes.trusted',
    });
    expect(resolvePushUrl(null, route('::', 1))?.url).toBe('http://[::1]:1');
    expect(resolvePushUrl(null, route('10.0.0.1', 2))?.url).toBe('http://10.0.0.1:2');
    expect(resolvePushUrl(null, route('fd00::1', 3))?.url).toBe('http://[fd00::1]:3');
  });

  it('when neither is configured then there is no URL', () => {
    expect(resolvePushUrl(null, undefined)).toEqual({ url: null, source: 'none' });
  });
});
