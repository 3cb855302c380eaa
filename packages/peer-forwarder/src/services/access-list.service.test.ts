import { AccessList, type AllowedPeer } from './access-list.service';

const peer = (id: string, address: string, state: AllowedPeer['state'] = 'active'): AllowedPeer => ({
  id,
  address,
  state,
});

describe('AccessList', () => {
  it('when a source is a registered peer then it is allowed with that peer id', () => {
    const list = new AccessList([]);
    list.replaceAll([peer('p1', '10.0.0.2'), peer('p2', '2001:db8::2')]);
    expect(list.check('10.0.0.2')).toEqual({ allowed: true, via: 'peer', peerId: 'p1' });
    expect(list.check('::ffff:10.0.0.2')).toEqual({ allowed: true, via: 'peer', peerId: 'p1' });
    expect(list.check('2001:db8:0::2')).toEqual({ allowed: true, via: 'peer', peerId: 'p2' });
    expect(list.check('10.0.0.3')).toEqual({ allowed: false });
  });

  it('when a peer is removed then it is refused, while lost and draining peers still get through', () => {
    const list = new AccessList([]);
    list.replaceAll([peer('gone', '10.0.0.1', 'removed'), peer('lost', '10.0.0.2', 'lost')]);
    list.apply('drain', peer('drain', '10.0.0.3', 'draining'));
    expect(list.check('10.0.0.1').allowed).toBe(false);
    expect(list.check('10.0.0.2').allowed).toBe(true);
    expect(list.check('10.0.0.3').allowed).toBe(true);
    list.apply('lost', peer('lost', '10.0.0.2', 'removed'));
    expect(list.check('10.0.0.2').allowed).toBe(false);
    expect(list.peerIds()).toEqual(['drain']);
  });

  it('when a peer is stopped then its address is refused until its record is active again', () => {
    const list = new AccessList([]);
    list.replaceAll([peer('p1', '10.0.0.4', 'stopped')]);
    expect(list.check('10.0.0.4').allowed).toBe(false);
    list.apply('p1', peer('p1', '10.0.0.4', 'active'));
    expect(list.check('10.0.0.4')).toEqual({ allowed: true, via: 'peer', peerId: 'p1' });
    list.apply('p1', peer('p1', '10.0.0.4', 'stopped'));
    expect(list.check('10.0.0.4').allowed).toBe(false);
  });

  it('when a peer changes address then the old address is refused and the new one allowed', () => {
    const list = new AccessList([]);
    list.apply('p1', peer('p1', '10.0.0.2'));
    list.apply('p1', peer('p1', '10.0.0.7'));
    expect(list.check('10.0.0.2').allowed).toBe(false);
    expect(list.check('10.0.0.7')).toEqual({ allowed: true, via: 'peer', peerId: 'p1' });
    list.apply('p1', null);
    expect(list.check('10.0.0.7').allowed).toBe(false);
  });

  it('when two peers share an address and one leaves then the other still gets through', () => {
    const list = new AccessList([]);
    list.replaceAll([peer('a', '127.0.0.1'), peer('b', '127.0.0.1')]);
    expect(list.check('127.0.0.1')).toEqual({ allowed: true, via: 'peer', peerId: 'a' });
    list.apply('a', null);
    expect(list.check('127.0.0.1')).toEqual({ allowed: true, via: 'peer', peerId: 'b' });
  });

  it('when a source is inside an allow range then it is allowed via that range', () => {
    const list = new AccessList(['192.168.0.0/16', 'fd00::/8']);
    expect(list.check('::ffff:192.168.4.4')).toEqual({ allowed: true, via: 'allow', cidr: '192.168.0.0/16' });
    expect(list.check('fd12::1')).toEqual({ allowed: true, via: 'allow', cidr: 'fd00::/8' });
    expect(list.check('fe80::1').allowed).toBe(false);
  });

  it('when a record has an unusable address or the source is unknown then nothing is allowed for it', () => {
    const list = new AccessList([]);
    expect(list.replaceAll([peer('bad', 'peer-host.local'), peer('ok', '10.0.0.1')])).toEqual(['bad']);
    expect(list.apply('bad2', peer('bad2', 'x'))).toBe(false);
    expect(list.check(undefined).allowed).toBe(false);
    expect(list.check('not-an-ip').allowed).toBe(false);
    expect(list.size).toBe(1);
  });
  it('when a stopped or removed peer is listed then it is refused but not reported as an unusable address', () => {
    const list = new AccessList([]);
    expect(list.replaceAll([peer('s', '10.0.0.1', 'stopped'), peer('bad', 'not-an-ip')])).toEqual(['bad']);
    expect(list.apply('r', peer('r', '10.0.0.2', 'removed'))).toBe(true);
    expect(list.check('10.0.0.1').allowed).toBe(false);
  });

  it('when a source address is unknown or unparsable then it is refused, even with allow ranges', () => {
    const list = new AccessList(['0.0.0.0/0', '::/0']);
    expect(list.check(undefined)).toEqual({ allowed: false });
    expect(list.check('not-an-ip')).toEqual({ allowed: false });
  });

  it('when two peers share an address then the one with the smaller id is named, whatever the order they came in', () => {
    const list = new AccessList([]);
    list.replaceAll([peer('peer-b', '10.0.0.9'), peer('peer-a', '10.0.0.9')]);
    expect(list.check('10.0.0.9')).toEqual({ allowed: true, via: 'peer', peerId: 'peer-a' });
    list.apply('peer-a', null);
    expect(list.check('10.0.0.9')).toEqual({ allowed: true, via: 'peer', peerId: 'peer-b' });
  });
});
