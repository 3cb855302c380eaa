import net from 'node:net';
import { canListen, distinctPort, ephemeralRangeStart, portSlice, SlicePorts } from './free-port';

// How tests' servers get their ports: each process from its own slice below
// the kernel's ephemeral range, walked in order; the kernel's draw, guarded, where there is no room.

describe('portSlice', () => {
  it('when slices fit below the ephemeral range then each process number gets its own, none overlapping', () => {
    const slices = [0, 1, 2, 3].map((n) => portSlice(n, 32768)!);
    expect(slices[0]).toEqual({ from: 15000, to: 15399 });
    expect(slices[1]).toEqual({ from: 15400, to: 15799 });
    for (let i = 1; i < slices.length; i += 1) expect(slices[i]!.from).toBe(slices[i - 1]!.to + 1);
  });

  it('when a slice would reach into the ephemeral range then there is none (the kernel draws instead)', () => {
    expect(portSlice(44, 32768)).toBeNull(); // 32600-32999
    expect(portSlice(43, 32768)).toEqual({ from: 32200, to: 32599 });
    expect(portSlice(0, 1024)).toBeNull();
    expect(portSlice(-1, 32768)).toBeNull();
  });
});

describe('ephemeralRangeStart', () => {
  it('when the kernel file gives a range then its first port is returned', () => {
    expect(ephemeralRangeStart(() => '32768\t60999\n')).toBe(32768);
  });

  it('when the file cannot be read or makes no sense then there is none', () => {
    expect(
      ephemeralRangeStart(() => {
        throw new Error('ENOENT');
      }),
    ).toBeNull();
    expect(ephemeralRangeStart(() => 'garbage')).toBeNull();
  });
});

describe('SlicePorts', () => {
  it('when ports are taken then they come in order from the start, wrapping around, each free one once per lap', async () => {
    const ports = new SlicePorts({ from: 100, to: 103 }, 6, () => Promise.resolve(true));
    const taken = [];
    for (let i = 0; i < 6; i += 1) taken.push(await ports.take());
    expect(taken).toEqual([102, 103, 100, 101, 102, 103]);
  });

  it('when something listens on a port then it is skipped', async () => {
    const busy = new Set([101, 102]);
    const ports = new SlicePorts({ from: 100, to: 103 }, 1, (p) => Promise.resolve(!busy.has(p)));
    expect(await ports.take()).toBe(103);
    expect(await ports.take()).toBe(100);
    expect(await ports.take()).toBe(103);
  });

  it('when no port of the slice is free then it says so', async () => {
    const ports = new SlicePorts({ from: 100, to: 101 }, 0, () => Promise.resolve(false));
    await expect(ports.take()).rejects.toThrow('no free port in 100-101');
  });
});

describe('canListen', () => {
  it('when a server listens on the port then it is not free, and once it closes it is', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    expect(await canListen(port)).toBe(false);
    await new Promise((resolve) => server.close(resolve));
    expect(await canListen(port)).toBe(true);
  });
});

describe('distinctPort', () => {
  it('when the draw offers a port already handed out then it draws again and hands out the next one', async () => {
    const offers = [5001, 5001, 5002];
    const draw = () => Promise.resolve(offers.shift()!);
    const taken = new Set<number>();
    expect(await distinctPort(draw, taken)).toBe(5001);
    expect(await distinctPort(draw, taken)).toBe(5002);
    expect(offers).toEqual([]);
    expect([...taken]).toEqual([5001, 5002]);
  });
});
