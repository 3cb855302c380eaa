import { distinctPort } from './redis-server';

// freePort's guard: a port the kernel offers twice is handed out once.

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
