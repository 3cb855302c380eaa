import { recordingLogger } from '@rps/common/testing';
import { RedisOutages, type RedisHealth } from './redis-outages.service';

/*
 * The gap rule and the probe of RedisOutages, as pure logic: replies are fed
 * with their times (noteReply), the probe's timer is jest's. The same rule
 * against a real Redis that stalls and restarts: test/redis-outages.test.ts.
 */

const GAP_MS = 500;
const PROBE_MS = 100;

function build(health: Partial<RedisHealth> = {}) {
  const { logger, lines } = recordingLogger('debug');
  const startedAt = jest.fn(async (_now?: number): Promise<number | null> => null);
  const ping = jest.fn(async () => undefined);
  let now = 1_000_000;
  const outages = new RedisOutages({
    health: { ping, startedAt, ...health },
    probeMs: PROBE_MS,
    gapMs: GAP_MS,
    logger,
    now: () => now,
  });
  return {
    outages,
    lines,
    ping,
    startedAt,
    setNow: (at: number) => (now = at),
    warnings: () => lines.filter((l) => l.level === 40),
  };
}

describe('RedisOutages gap rule', () => {
  it('when the first reply comes then it is no outage, however late', async () => {
    const { outages, warnings } = build();
    outages.noteReply(50_000);
    expect(await outages.since()).toBe(0);
    expect(warnings()).toEqual([]);
  });

  it('when replies are exactly gapMs apart then it is no outage; one millisecond more is', async () => {
    const { outages, warnings } = build();
    outages.noteReply(10_000);
    outages.noteReply(10_000 + GAP_MS);
    expect(await outages.since()).toBe(0);
    outages.noteReply(10_000 + 2 * GAP_MS + 1);
    expect(await outages.since()).toBe(10_000 + 2 * GAP_MS + 1);
    expect(warnings()).toEqual([
      expect.objectContaining({
        unreachableMs: GAP_MS + 1,
        msg: 'redis was unreachable: liveness counts heartbeat silence from now',
      }),
    ]);
  });

  it('when a reply arrives out of order then the gap is measured from the latest one', async () => {
    const { outages } = build();
    outages.noteReply(10_000);
    outages.noteReply(10_400);
    // A probe that started earlier and answered late: no gap is measured from it.
    outages.noteReply(10_100);
    outages.noteReply(10_400 + GAP_MS);
    expect(await outages.since()).toBe(0);
    outages.noteReply(10_400 + 2 * GAP_MS + 7);
    expect(await outages.since()).toBe(10_400 + 2 * GAP_MS + 7);
  });

  it('when Redis started after the last outage then since is its start, and the later of the two otherwise', async () => {
    let started: number | null = 20_000;
    const { outages, setNow } = build({ startedAt: async () => started });
    setNow(30_000);
    expect(await outages.since()).toBe(20_000);
    outages.noteReply(21_000);
    outages.noteReply(25_000);
    expect(await outages.since()).toBe(25_000);
    started = null; // INFO gave no uptime
    expect(await outages.since()).toBe(25_000);
  });

  it('when since is asked then Redis start time is read at the service clock', async () => {
    const { outages, startedAt, setNow } = build();
    setNow(42_000);
    await outages.since();
    expect(startedAt).toHaveBeenCalledWith(42_000);
  });
});

describe('RedisOutages probe', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  /** Lets the probe's promise callbacks run (fake timers do not touch microtasks). */
  const settle = async () => {
    for (let i = 0; i < 10; i++) await Promise.resolve();
  };

  it('when a ping is still unanswered then the next ticks send no other', async () => {
    let answer: () => void = () => undefined;
    const ping = jest.fn(() => new Promise<void>((resolve) => (answer = resolve)));
    const { outages, setNow } = build({ ping });
    outages.start();
    expect(ping).toHaveBeenCalledTimes(1);
    jest.advanceTimersByTime(PROBE_MS * 10);
    expect(ping).toHaveBeenCalledTimes(1);
    // The answer after 10 probe intervals: its time is noted, and probing resumes.
    setNow(1_000_000 + GAP_MS + 1);
    answer();
    await settle();
    jest.advanceTimersByTime(PROBE_MS);
    expect(ping).toHaveBeenCalledTimes(2);
    outages.stop();
  });

  it('when probes answer then each reply is noted at the service clock', async () => {
    const { outages, setNow } = build();
    setNow(10_000);
    outages.start();
    await settle();
    setNow(10_000 + GAP_MS + 1);
    jest.advanceTimersByTime(PROBE_MS);
    await settle();
    expect(await outages.since()).toBe(10_000 + GAP_MS + 1);
    outages.stop();
  });

  it('when stopped then it pings no more', async () => {
    const { outages, ping } = build();
    outages.start();
    await settle();
    for (let i = 0; i < 3; i++) {
      jest.advanceTimersByTime(PROBE_MS);
      await settle();
    }
    expect(ping).toHaveBeenCalledTimes(4);
    outages.stop();
    jest.advanceTimersByTime(PROBE_MS * 10);
    expect(ping).toHaveBeenCalledTimes(4);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('when a ping fails then it is logged at debug, no reply is noted, and the next probe pings again', async () => {
    const ping = jest.fn(async (): Promise<void> => {
      throw new Error('Connection is closed.');
    });
    const { outages, lines, setNow } = build({ ping });
    setNow(10_000);
    outages.start();
    await settle();
    expect(lines).toEqual([
      expect.objectContaining({
        level: 20,
        msg: 'redis probe failed',
        err: expect.objectContaining({ message: 'Connection is closed.' }),
      }),
    ]);
    ping.mockResolvedValue(undefined);
    setNow(10_000 + GAP_MS * 10);
    jest.advanceTimersByTime(PROBE_MS);
    await settle();
    expect(ping).toHaveBeenCalledTimes(2);
    // The failed ping was no reply: the first real one is no gap.
    expect(await outages.since()).toBe(0);
  });
});
