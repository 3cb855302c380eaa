import { addressKey } from './cidr.matcher';
import { ConnectionCaps } from './connection-caps.service';

describe('ConnectionCaps', () => {
  const key = (a: string) => addressKey(a)!;

  it('when a source reaches its cap then further connections are refused until one closes', () => {
    const caps = new ConnectionCaps({ connectionsPerStranger: 2, connectionsPerPeer: 3 });
    const stranger = key('10.0.0.9');
    expect([caps.admit(stranger, false), caps.admit(stranger, false), caps.admit(stranger, false)]).toEqual([
      true,
      true,
      false,
    ]);
    caps.release(stranger);
    expect(caps.admit(stranger, false)).toBe(true);
    const peer = key('10.0.0.2');
    expect([1, 2, 3, 4].map(() => caps.admit(peer, true))).toEqual([true, true, true, false]);
  });

  it('when an address arrives IPv4-mapped then it shares the count of its IPv4 form', () => {
    const caps = new ConnectionCaps({ connectionsPerStranger: 1, connectionsPerPeer: 1 });
    expect(caps.admit(key('10.0.0.5'), false)).toBe(true);
    expect(caps.admit(key('::ffff:10.0.0.5'), false)).toBe(false);
    caps.release(key('10.0.0.5'));
    expect(caps.count(key('10.0.0.5'))).toBe(0);
  });
});
