import { addressKey, CidrMatcher, displayAddress, parseCidr } from './cidr.matcher';

describe('addressKey', () => {
  it('when IPv4 and its IPv4-mapped IPv6 forms are parsed then they give the same key', () => {
    const key = addressKey('10.1.2.3');
    expect(key).not.toBeNull();
    expect(addressKey('::ffff:10.1.2.3')).toBe(key);
    expect(addressKey('::ffff:a01:203')).toBe(key);
    expect(addressKey('0:0:0:0:0:ffff:10.1.2.3')).toBe(key);
  });

  it('when IPv6 is written compressed or in full then the keys match', () => {
    expect(addressKey('2001:db8::1')).toBe(addressKey('2001:0db8:0000:0000:0000:0000:0000:0001'));
    expect(addressKey('::1')).toBe(1n);
    expect(addressKey('::')).toBe(0n);
    expect(addressKey('fe80::1%eth0')).toBe(addressKey('fe80::1'));
    expect(addressKey('2001:db8::1:0:0:1')).toBe(0x20010db8000000000001000000000001n);
  });

  it('when an IPv4-compatible (not mapped) address is parsed then it differs from the IPv4 one', () => {
    expect(addressKey('::10.1.2.3')).not.toBe(addressKey('10.1.2.3'));
  });

  it('when the text is not an address then it gives null', () => {
    for (const bad of ['', 'localhost', '10.0.0', '10.0.0.256', '1::2::3', 'gggg::1']) {
      expect(addressKey(bad)).toBeNull();
    }
  });
});

describe('displayAddress', () => {
  it('when an address is IPv4-mapped then it shows as IPv4, otherwise unchanged', () => {
    expect(displayAddress('::ffff:127.0.0.9')).toBe('127.0.0.9');
    expect(displayAddress('::1')).toBe('::1');
    expect(displayAddress('10.0.0.1')).toBe('10.0.0.1');
  });
});

describe('CidrMatcher', () => {
  const match = (cidrs: string[], address: string) =>
    new CidrMatcher(cidrs).match(addressKey(address)!)?.text ?? null;

  it('when an IPv4 range is configured then IPv4 and IPv4-mapped sources inside match and outside do not', () => {
    expect(match(['10.0.0.0/8'], '10.200.3.4')).toBe('10.0.0.0/8');
    expect(match(['10.0.0.0/8'], '::ffff:10.200.3.4')).toBe('10.0.0.0/8');
    expect(match(['10.0.0.0/8'], '11.0.0.1')).toBeNull();
    expect(match(['10.0.0.0/8'], '::ffff:11.0.0.1')).toBeNull();
    expect(match(['192.168.1.0/25'], '192.168.1.127')).not.toBeNull();
    expect(match(['192.168.1.0/25'], '192.168.1.128')).toBeNull();
  });

  it('when an IPv4 range is configured then a plain IPv6 source never matches it', () => {
    expect(match(['0.0.0.0/0'], '::1')).toBeNull();
    expect(match(['0.0.0.0/0'], '::ffff:1.2.3.4')).toBe('0.0.0.0/0');
  });

  it('when an IPv6 range is configured then IPv6 sources match by prefix', () => {
    expect(match(['2001:db8::/32'], '2001:db8:ffff::1')).toBe('2001:db8::/32');
    expect(match(['2001:db8::/32'], '2001:db9::1')).toBeNull();
    expect(match(['::/0'], '::1')).toBe('::/0');
    expect(match(['fd00::/8', '::1'], '::1')).toBe('::1');
  });

  it('when an IPv4-mapped IPv6 range is configured then plain IPv4 sources match it', () => {
    expect(match(['::ffff:10.0.0.0/104'], '10.9.9.9')).toBe('::ffff:10.0.0.0/104');
    expect(match(['::ffff:10.0.0.0/104'], '11.9.9.9')).toBeNull();
  });

  it('when a bare address is configured then only that host matches', () => {
    expect(match(['127.0.0.1'], '127.0.0.1')).toBe('127.0.0.1');
    expect(match(['127.0.0.1'], '127.0.0.2')).toBeNull();
  });

  it('when a range has host bits set then it still matches its network', () => {
    expect(parseCidr('10.1.2.3/8').base).toBe(addressKey('10.0.0.0'));
    expect(match(['10.1.2.3/8'], '10.9.9.9')).toBe('10.1.2.3/8');
  });

  it('when entries are invalid then construction fails naming every bad entry', () => {
    expect(() => new CidrMatcher(['10.0.0.0/33', 'nonsense', '::/129', '10.0.0.0/8', '1.2.3.4/8/9'])).toThrow(
      /10\.0\.0\.0\/33.*nonsense.*::\/129.*1\.2\.3\.4\/8\/9/,
    );
    expect(() => new CidrMatcher(['10.0.0.0/x'])).toThrow(/prefix length/);
  });

  it('when an entry has spaces around it then it is read; a prefix that is not plain digits is refused with the config key named', () => {
    expect(parseCidr(' 10.0.0.0/8 ')).toMatchObject({ prefix: 104 });
    for (const bad of ['10.0.0.0/x', '10.0.0.0/1e1', '10.0.0.0/ 8', '10.0.0.0/8x', '10.0.0.0/-1']) {
      expect(() => parseCidr(bad)).toThrow(/invalid prefix length/);
    }
    expect(() => new CidrMatcher(['10.0.0.0/x'])).toThrow(
      /^forwarder\.allow: "10\.0\.0\.0\/x" has an invalid/,
    );
  });

  it('when an IPv6 address only starts like an IPv4-mapped one then it is shown as it is', () => {
    expect(displayAddress('::ffff:abcd:1')).toBe('::ffff:abcd:1');
    expect(displayAddress('::ffff:10.0.0.1')).toBe('10.0.0.1');
  });
});
