import type os from 'node:os';
import {
  addressFromInterfaces,
  AddressSourceError,
  readAddress,
  validAddress,
} from './address-source.service';

const info = (address: string, family: 'IPv4' | 'IPv6', internal = false): os.NetworkInterfaceInfo =>
  ({ address, family, internal, netmask: '', mac: '', cidr: null }) as os.NetworkInterfaceInfo;

const interfaces = {
  lo: [info('127.0.0.1', 'IPv4', true), info('::1', 'IPv6', true)],
  eth0: [info('fe80::1', 'IPv6'), info('198.18.0.7', 'IPv4')],
  eth1: [info('2001:db8::5', 'IPv6')],
};

describe('address sources', () => {
  it('when a value is an IPv4 or IPv6 literal with whitespace then it is trimmed and kept', () => {
    expect(validAddress(' 198.18.0.7\n', 'x')).toBe('198.18.0.7');
    expect(validAddress('2001:db8::5', 'x')).toBe('2001:db8::5');
  });

  it.each(['', 'example.org', '198.18.0.300', '<html>'])(
    'when the value is %j then it is refused',
    (value) => {
      expect(() => validAddress(value, 'command')).toThrow(AddressSourceError);
    },
  );

  it('when no interface is named then the first non-internal IPv4 address is chosen', () => {
    expect(addressFromInterfaces(interfaces, null)).toBe('198.18.0.7');
  });

  it('when an interface is named then its IPv4 address wins, else its first address', () => {
    expect(addressFromInterfaces(interfaces, 'lo')).toBe('127.0.0.1');
    expect(addressFromInterfaces(interfaces, 'eth1')).toBe('2001:db8::5');
  });

  it('when the named interface does not exist or nothing qualifies then the check fails', () => {
    expect(() => addressFromInterfaces(interfaces, 'wlan9')).toThrow(/wlan9 not found/);
    expect(() => addressFromInterfaces({ lo: interfaces.lo }, null)).toThrow(/no non-internal IPv4/);
  });

  it('when the source is an interface then readAddress uses the injected interface list', async () => {
    const source = { kind: 'interface' as const, name: 'eth0' };
    await expect(readAddress(source, { timeoutMs: 100, networkInterfaces: () => interfaces })).resolves.toBe(
      '198.18.0.7',
    );
  });
});
