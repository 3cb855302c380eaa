import type { CertificateIdentity, ClientIdentity } from '@rps/common';
import { recordingLogger } from '@rps/common/testing';
import type { StoredClients } from '../stores/client-allow-list.store';
import { GATEWAY_DEFAULTS } from '../gateway.constants';
import { ClientAllowList } from './client-allow-list.service';

const fp = (byte: string) => Array.from({ length: 32 }, () => byte).join(':');
const cert = (fingerprint: string, serial = '1', issuer = 'CN=CA'): CertificateIdentity => ({
  fingerprint256: fingerprint,
  serial,
  issuer,
  subject: 'CN=x',
});

function build(
  configured: ClientIdentity[],
  remote: () => StoredClients | Error,
  allowAnyClientOfCa = false,
) {
  const { logger, lines } = recordingLogger();
  const loads: number[] = [];
  const list = new ClientAllowList({
    configured,
    allowAnyClientOfCa,
    load: async () => {
      loads.push(Date.now());
      const value = remote();
      if (value instanceof Error) throw value;
      return value;
    },
    refreshMs: GATEWAY_DEFAULTS.clientsRefreshMs,
    logger,
  });
  return { list, lines, loads };
}

describe('ClientAllowList', () => {
  afterEach(() => jest.useRealTimers());

  it('when a certificate matches by fingerprint or by serial and issuer then it gets the entry’s name', () => {
    const { list } = build(
      [
        { name: 'a', fingerprint256: fp('AA') },
        { name: 'b', serial: '5', issuer: 'CN=CA' },
      ],
      () => ({ clients: [], invalid: [] }),
    );
    expect(list.identify(cert(fp('AA')))).toEqual({ allowed: true, name: 'a' });
    expect(list.identify(cert(fp('BB'), '5'))).toEqual({ allowed: true, name: 'b' });
    expect(list.identify(cert(fp('BB'), '5', 'CN=Other CA'))).toEqual({ allowed: false });
    expect(list.identify(cert(fp('BB'), '6'))).toEqual({ allowed: false });
  });

  it('when allowAnyClientOfCa is set then an unlisted certificate gets in without a name, a listed one with its name', () => {
    const { list } = build(
      [{ name: 'a', fingerprint256: fp('AA') }],
      () => ({ clients: [], invalid: [] }),
      true,
    );
    expect(list.identify(cert(fp('BB')))).toEqual({ allowed: true, name: null });
    expect(list.identify(cert(fp('AA')))).toEqual({ allowed: true, name: 'a' });
  });

  it('when the runtime list changes then each refresh applies it, merged after the configured list', async () => {
    let remote: StoredClients = { clients: [{ name: 'r', fingerprint256: fp('CC') }], invalid: [] };
    const { list, lines } = build([{ name: 'a', fingerprint256: fp('AA') }], () => remote);
    await list.refresh();
    expect(list.identify(cert(fp('CC')))).toEqual({ allowed: true, name: 'r' });
    // A runtime entry cannot rename a configured client.
    remote = { clients: [{ name: 'imposter', fingerprint256: fp('AA') }], invalid: [] };
    await list.refresh();
    expect(list.identify(cert(fp('AA')))).toEqual({ allowed: true, name: 'a' });
    expect(list.identify(cert(fp('CC')))).toEqual({ allowed: false });
    expect(lines.filter((l) => l.msg === 'allowed clients loaded')).toHaveLength(2);
  });

  it('when Redis cannot be read then the last list stays and one warn line says so', async () => {
    let remote: StoredClients | Error = { clients: [{ name: 'r', fingerprint256: fp('CC') }], invalid: [] };
    const { list, lines } = build([], () => remote);
    await list.refresh();
    remote = new Error('Connection is closed');
    await list.refresh();
    await list.refresh();
    expect(list.identify(cert(fp('CC')))).toEqual({ allowed: true, name: 'r' });
    expect(lines.filter((l) => l.level === 40)).toHaveLength(1);
  });

  it('when started then it reads at once and again every refresh interval, well within a second', async () => {
    jest.useFakeTimers();
    expect(GATEWAY_DEFAULTS.clientsRefreshMs).toBeLessThanOrEqual(500);
    const { list, loads } = build([], () => ({ clients: [], invalid: [] }));
    await list.start();
    expect(loads).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(GATEWAY_DEFAULTS.clientsRefreshMs);
    expect(loads).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(GATEWAY_DEFAULTS.clientsRefreshMs);
    expect(loads).toHaveLength(3);
    list.stop();
    await jest.advanceTimersByTimeAsync(GATEWAY_DEFAULTS.clientsRefreshMs * 4);
    expect(loads).toHaveLength(3);
  });
});
