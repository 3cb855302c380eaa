import { closeRedis, createRedis, createRedisKeys, waitForRedis, type RedisKeys } from '@rps/common';
import {
  recordingLogger,
  startRedisProxy,
  startRedisServer,
  testLogger,
  uniquePrefix,
  type TestRedisServer,
} from '@rps/common/testing';
import { Redis } from 'ioredis';
import { SubmitAcks, type AckWatch } from '../src/stores/submit-acks.store';

/*
 * SubmitAcks wakes a claim waiting for the gateway's acknowledgement, over a
 * real subscriber connection; the gateway's side is a PUBLISH on the run's
 * channel (what run-acknowledge's script does). A wake that should come from
 * a message is given more time (LONG) than `woken` waits for it, so only the
 * message can end it. A wake that must not have come yet is
 * checked after a round trip through Redis and the event loop, which is when
 * a wrong wake would have been delivered (`settledSoon`).
 */

/**
 * Longer than `woken` waits, so only a message ends such a wait; short
 * enough that a failed test leaves no long timer behind.
 */
const LONG = 45_000;

describe('SubmitAcks against a real Redis', () => {
  let server: TestRedisServer;
  let publisher: Redis;
  let sub: Redis;
  let keys: RedisKeys;
  let acks: SubmitAcks;
  /** Every watch of the test, with the connection its messages come on. */
  let watches: Array<{ w: AckWatch; conn: Redis; channel: string }>;
  /** What a test opened beyond the shared connections, closed after it whatever happened. */
  let cleanups: Array<() => Promise<void>>;

  beforeAll(async () => {
    server = await startRedisServer();
    publisher = createRedis({
      url: server.url,
      role: 'worker',
      name: 'acks-publisher',
      logger: testLogger(),
    });
    await waitForRedis(publisher);
  });
  beforeEach(async () => {
    sub = createRedis({ url: server.url, role: 'worker', name: 'acks-sub', logger: testLogger() });
    await waitForRedis(sub);
    keys = createRedisKeys(uniquePrefix());
    acks = new SubmitAcks(sub, keys, testLogger());
    watches = [];
    cleanups = [];
  });
  afterEach(async () => {
    // A wait the test left pending (it failed) ends now, not after LONG: jest would wait for its timer.
    for (const { w, conn, channel } of watches) {
      conn.emit('message', channel, '1');
      w.close();
    }
    for (const cleanup of cleanups) await cleanup();
    await closeRedis(sub);
  });
  afterAll(async () => {
    await closeRedis(publisher);
    await server.stop();
  });

  const watch = (runId: number, on = acks, conn = sub) => {
    const w = on.watch(runId);
    watches.push({ w, conn, channel: keys.runAcknowledged(runId) });
    return w;
  };
  const acknowledge = (runId: number) => publisher.publish(keys.runAcknowledged(runId), '1');
  const subscribers = async (runId: number) => {
    const [, n] = (await publisher.call('PUBSUB', 'NUMSUB', keys.runAcknowledged(runId))) as [string, number];
    return n;
  };
  /**
   * Waits for a wake that a message (or the subscription's answer) should
   * end. The bound only turns a wake that never comes into a failure instead
   * of a hang of the whole run (its LONG timer): a message through a local
   * Redis takes milliseconds, 20 s allows for a loaded machine.
   */
  const woken = async (p: Promise<unknown>) => {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<string>((r) => (timer = setTimeout(() => r('not woken within 20 s'), 20_000)));
    const outcome = await Promise.race([p.then(() => 'woken'), bound]);
    clearTimeout(timer);
    expect(outcome).toBe('woken');
  };
  /** Whether `p` has settled after a round trip through Redis and a turn of the event loop. */
  const settledSoon = async (p: Promise<void>) => {
    let settled = false;
    void p.then(() => (settled = true));
    await publisher.ping();
    await sub.ping().catch(() => undefined);
    await new Promise((r) => setImmediate(r));
    return settled;
  };
  /**
   * A wait `w` starts now is still pending after `meanwhile` (which must not
   * end it) and a round trip, and ends when `runId` is acknowledged.
   */
  const waitsForAcknowledgement = async (w: AckWatch, runId: number, meanwhile?: () => Promise<unknown>) => {
    const wait = w.wake(LONG);
    await meanwhile?.();
    expect(await settledSoon(wait)).toBe(false);
    await acknowledge(runId);
    await woken(wait);
  };

  it('when a connection is given then acknowledgements can wake claims, and without one they cannot', () => {
    expect(acks.listening).toBe(true);
    expect(new SubmitAcks(undefined, keys, testLogger()).listening).toBe(false);
  });

  it('when the run is acknowledged then the waiting claim wakes, and the next wait lasts until the next message', async () => {
    const w = watch(7);
    await woken(w.wake(LONG)); // the subscription's answer: look once more
    await waitsForAcknowledgement(w, 7);
    await waitsForAcknowledgement(w, 7);
  });

  it("when another run is acknowledged then this run's claim sleeps on", async () => {
    const w = watch(7);
    watch(8);
    await woken(w.wake(LONG));
    await waitsForAcknowledgement(w, 7, () => acknowledge(8));
  });

  it('when the acknowledgement comes while the claim is looking then its next wait returns at once, once', async () => {
    const w = watch(7);
    await woken(w.wake(LONG));
    await acknowledge(7);
    // Heard with no wait pending: wait until the message has been delivered.
    await sub.ping();
    await woken(w.wake(LONG));
    await waitsForAcknowledgement(w, 7);
  });

  it('when no message comes then a wait ends after its time', async () => {
    const w = watch(7);
    await woken(w.wake(LONG));
    await w.wake(20);
  });

  it('when two claims wait on one run then one message wakes both, and one of them leaving keeps the other subscribed', async () => {
    const a = watch(7);
    const b = watch(7);
    await woken(Promise.all([a.wake(LONG), b.wake(LONG)]));
    expect(await subscribers(7)).toBe(1);
    const [wa, wb] = [a.wake(LONG), b.wake(LONG)];
    await acknowledge(7);
    await woken(Promise.all([wa, wb]));
    a.close();
    const again = b.wake(LONG);
    await acknowledge(7);
    await woken(again);
    b.close();
    expect(await subscribers(7)).toBe(0);
  });

  it("when a watch is closed twice then it does not end a newer watch's subscription", async () => {
    const old = watch(7);
    await woken(old.wake(LONG));
    old.close();
    const fresh = watch(7);
    await woken(fresh.wake(LONG));
    old.close();
    const next = fresh.wake(LONG);
    await acknowledge(7);
    await woken(next);
    expect(await subscribers(7)).toBe(1);
  });

  it('when SUBSCRIBE is answered after a wait ended by its time then the next wait returns at once', async () => {
    // The agent's connection through a relay that holds Redis's replies: SUBSCRIBE runs, its answer waits.
    const proxy = await startRedisProxy(server.port);
    const late = createRedis({ url: proxy.url, role: 'worker', name: 'acks-late', logger: testLogger() });
    cleanups.push(async () => {
      await closeRedis(late);
      await proxy.close();
    });
    await waitForRedis(late);
    const release = proxy.holdReplies();
    const w = watch(7, new SubmitAcks(late, keys, testLogger()), late);
    await w.wake(1); // ends by its time: the subscription's answer is held
    release();
    await late.ping(); // answered after SUBSCRIBE
    await new Promise((r) => setImmediate(r));
    // An acknowledgement published before the subscription was never heard: look once more.
    await woken(w.wake(LONG));
    await waitsForAcknowledgement(w, 7);
  });

  it('when a message arrives for a channel nobody waits on then it is ignored', () => {
    expect(() => sub.emit('message', keys.runAcknowledged(99), '1')).not.toThrow();
  });

  it('when SUBSCRIBE fails then it is logged and the claim only sleeps: no wake from the subscription', async () => {
    // A connection that never connects and queues nothing: SUBSCRIBE is refused at once.
    const dead = new Redis(server.url, { lazyConnect: true, enableOfflineQueue: false });
    cleanups.push(async () => dead.disconnect());
    const { logger, lines } = recordingLogger('debug');
    const polling = new SubmitAcks(dead, keys, logger);
    const w = watch(7, polling, dead);
    const wait = w.wake(LONG);
    expect(await settledSoon(wait)).toBe(false);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 20,
        channel: keys.runAcknowledged(7),
        msg: 'acknowledgement channel not subscribed; polling',
        err: expect.stringContaining('enableOfflineQueue'),
      }),
    ]);
    // Only a message ends the wait early (none can come on this connection: delivered by hand).
    dead.emit('message', keys.runAcknowledged(7), '1');
    await woken(wait);
  });
});
