import {
  closeRedis,
  createRedis,
  createRedisKeys,
  RunStore,
  waitForRedis,
  type RedisKeys,
} from '@rps/common';
import {
  startRedisServer,
  testLogger,
  uniquePrefix,
  waitFor,
  type TestRedisServer,
} from '@rps/common/testing';
import type { Redis } from 'ioredis';
import { claimRun } from '../src/services/run-claim.service';
import { RunLedger } from '../src/stores/run-ledger.store';

// claimRun is how an agent takes a run: one peer at a time, started at most
// once, never while the gateway has not acknowledged the submit. Each case
// drives the record into the state a re-delivered or early job meets.
describe('claimRun against a real Redis', () => {
  let server: TestRedisServer;
  let redis: Redis;
  /** The agent's subscriber connection for acknowledgements (RunLedger.acks). */
  let events: Redis;
  let keys: RedisKeys;
  let ledger: RunLedger;
  /** The gateway's side of the record: submits and acknowledgements. */
  let store: RunStore;
  const logger = testLogger();
  const body = Buffer.from('{}');
  const meta = { taskId: 1, jobId: 1 };
  const job = (runId: number, execution = 1) => ({ runId, execution });

  beforeAll(async () => {
    server = await startRedisServer();
    redis = createRedis({ url: server.url, role: 'worker', name: 'run-claim-test', logger });
    events = createRedis({ url: server.url, role: 'worker', name: 'run-claim-events', logger });
    await Promise.all([waitForRedis(redis), waitForRedis(events)]);
  });
  beforeEach(() => {
    keys = createRedisKeys(uniquePrefix());
    ledger = new RunLedger(redis, keys, logger);
    store = new RunStore(redis, keys);
  });
  afterAll(async () => {
    await closeRedis(events);
    await closeRedis(redis);
    await server.stop();
  });

  const submit = (runId: number, pending = false) => store.submit(runId, body, meta, Date.now(), { pending });

  /**
   * The ledger, counting its reads and changes, with hooks where another
   * process may act in between (a race driven step by step). A claim that
   * would poll without end (its wait's deadline broken) fails after
   * `maxReads` reads instead of hanging until jest's or Stryker's timeout:
   * far more than any wait of these tests needs, as the pause between two
   * reads grows to 10 ms.
   */
  class CountingLedger extends RunLedger {
    reads = 0;
    applies: string[] = [];
    /** Runs after read `n` is taken and before the claim sees it (the value it gets is then stale). */
    afterRead?: (n: number) => Promise<void>;
    /** Runs after change `n` (1-based) was applied. */
    afterApply?: (n: number) => Promise<void>;
    /**
     * `listening`: with the agent's subscriber connection, and each fallback
     * pause of the wait stretched to a minute, so only the acknowledgement's
     * message (or the subscription's answer) can wake the claim in a test.
     */
    constructor(
      public maxReads = 1_000_000,
      listening = false,
    ) {
      super(redis, keys, logger, listening ? events : undefined);
      if (!listening) return;
      const watch = this.acks.watch.bind(this.acks);
      this.acks.watch = (runId) => {
        const w = watch(runId);
        return { wake: () => w.wake(60_000), close: () => w.close() };
      };
    }
    private countRead(): void {
      this.reads++;
      if (this.reads > this.maxReads) throw new Error(`read ${this.reads} times: polling without end`);
    }
    override async get(runId: number) {
      this.countRead();
      const record = await super.get(runId);
      await this.afterRead?.(this.reads);
      return record;
    }
    /** The claim's look and dispatch are one script: a read, and a change unless the run is pending. */
    override async claim(...args: Parameters<RunLedger['claim']>) {
      this.countRead();
      const result = await super.claim(...args);
      await this.afterRead?.(this.reads);
      if (result === 'pending') return result;
      this.applies.push(`dispatch ${result.ok ? 'ok' : 'refused'}`);
      await this.afterApply?.(this.applies.length);
      return result;
    }
    override async apply(...args: Parameters<RunLedger['apply']>) {
      const result = await super.apply(...args);
      this.applies.push(`${args[1]} ${result.ok ? 'ok' : 'refused'}`);
      await this.afterApply?.(this.applies.length);
      return result;
    }
  }
  /** A claim of a run that is not pending: it must not wait at all (wait 0), so a claim that wrongly waits fails at once. */
  const claimNow = (l: RunLedger, data: { runId: number; execution: number }) =>
    claimRun(l, data, 'peer-a', logger, 0);

  it('when the run is queued then it is dispatched to this peer', async () => {
    await submit(1);
    const counting = new CountingLedger();
    // The default wait: a run that is not pending is taken at the first look, in one change.
    expect(await claimRun(counting, job(1), 'peer-a', logger)).toEqual({ ok: true });
    expect(counting.applies).toEqual(['dispatch ok']);
    expect(await ledger.get(1)).toMatchObject({ state: 'dispatched', peerId: 'peer-a', execution: 1 });
  });

  it('when the submit is still pending after the wait then it is not taken and stays queued', async () => {
    await submit(2, true);
    // A wait of 0 ms gives up at its first or second look (the clock may not have moved yet).
    const counting = new CountingLedger(50);
    const claim = await claimRun(counting, job(2), 'peer-a', logger, 0);
    expect(claim).toMatchObject({ ok: false, reason: expect.stringMatching(/never acknowledged/) as string });
    expect(await ledger.get(2)).toMatchObject({ state: 'queued', peerId: '' });
  });

  it('when the pending mark belongs to another execution then the job of this one is not held back', async () => {
    await submit(3, true);
    // A job of execution 2 meets a record whose execution 1 is pending: it is
    // not this job's wait, and the dispatch itself refuses the other execution.
    const claim = await claimRun(ledger, job(3, 2), 'peer-a', logger, 0);
    expect(claim).toEqual({ ok: false, reason: expect.not.stringMatching(/never acknowledged/) as string });
    expect(await ledger.get(3)).toMatchObject({ state: 'queued' });
  });

  it('when the gateway acknowledges while the claim waits then the claim sees it and takes the run', async () => {
    await submit(11, true);
    const counting = new CountingLedger();
    let settled = false;
    const claim = claimRun(counting, job(11), 'peer-a', logger, 600_000).finally(() => {
      settled = true;
    });
    // Still waiting after a second look: the pending run is polled, not given up on.
    await waitFor('a second look at the pending run', () => counting.reads >= 2 || settled);
    expect(settled).toBe(false);
    expect(await ledger.get(11)).toMatchObject({ state: 'queued', peerId: '' });
    expect(await store.acknowledge(11, 1, 60_000)).toBe('acked');
    // It must see the acknowledgement at its next look: one still polling 50 reads later fails (never hangs).
    counting.maxReads = counting.reads + 50;
    expect(await claim).toEqual({ ok: true });
    expect(await ledger.get(11)).toMatchObject({ state: 'dispatched', peerId: 'peer-a', execution: 1 });
  });

  it('when the submit is acknowledged then the run is taken', async () => {
    await submit(4, true);
    expect(await store.acknowledge(4, 1, 60_000)).toBe('acked');
    expect(await claimRun(ledger, job(4), 'peer-a', logger, 0)).toEqual({ ok: true });
  });

  it('when the job is re-delivered while another peer holds it dispatched then it is taken over', async () => {
    await submit(5);
    expect((await ledger.apply(5, 'dispatch', { execution: 1, peerId: 'peer-old' })).ok).toBe(true);
    expect(await claimNow(ledger, job(5))).toEqual({ ok: true });
    expect(await ledger.get(5)).toMatchObject({ state: 'dispatched', peerId: 'peer-a' });
    // The old owner's start now fails: the run starts once.
    expect((await ledger.apply(5, 'start', { execution: 1, peerId: 'peer-old' })).ok).toBe(false);
  });

  it('when the run is running on another peer then it is left to that peer', async () => {
    await submit(6);
    await ledger.apply(6, 'dispatch', { execution: 1, peerId: 'peer-b' });
    await ledger.apply(6, 'start', { execution: 1, peerId: 'peer-b' });
    const claim = await claimNow(ledger, job(6));
    expect(claim).toEqual({ ok: false, reason: 'running on peer-b; liveness decides if that peer is gone' });
    expect(await ledger.get(6)).toMatchObject({ state: 'running', peerId: 'peer-b' });
  });

  it('when the run is running on this peer from an earlier life then it is handed back as an orphan, not re-run', async () => {
    await submit(7);
    await ledger.apply(7, 'dispatch', { execution: 1, peerId: 'peer-a' });
    await ledger.apply(7, 'start', { execution: 1, peerId: 'peer-a' });
    const claim = await claimNow(ledger, job(7));
    expect(claim).toMatchObject({
      ok: false,
      reason: 'started in an earlier life of this agent',
      orphan: { runId: 7, state: 'running', peerId: 'peer-a' },
    });
    expect(await ledger.get(7)).toMatchObject({ state: 'running', peerId: 'peer-a' });
  });

  it('when the job is of an older execution than the record then it is refused', async () => {
    await submit(8);
    await ledger.apply(8, 'dispatch', { execution: 1, peerId: 'peer-b' });
    await ledger.apply(8, 'fail', { execution: 1, peerId: 'peer-b' });
    await submit(8); // execution 2
    await ledger.apply(8, 'dispatch', { execution: 2, peerId: 'peer-b' });
    const claim = await claimNow(ledger, job(8, 1));
    expect(claim).toEqual({ ok: false, reason: 'another execution of the run' });
    expect(await ledger.get(8)).toMatchObject({ state: 'dispatched', peerId: 'peer-b', execution: 2 });
  });

  it('when the run has ended then it is refused and stays ended', async () => {
    await submit(9);
    await ledger.apply(9, 'dispatch', { execution: 1, peerId: 'peer-b' });
    await ledger.apply(9, 'stop', { execution: 1, peerId: 'peer-b' });
    const claim = await claimNow(ledger, job(9));
    expect(claim).toEqual({
      ok: false,
      reason: 'cannot dispatch a run that is stopped (the run is over; only resubmit applies)',
    });
    expect(await ledger.get(9)).toMatchObject({ state: 'stopped' });
  });

  it('when the run is gone then it is refused', async () => {
    expect(await claimNow(ledger, job(10))).toEqual({ ok: false, reason: 'run 10 does not exist' });
  });

  it('when the run is stopped between the refused dispatch and the re-read then it is refused and stays stopped', async () => {
    await submit(12);
    await ledger.apply(12, 'dispatch', { execution: 1, peerId: 'peer-old' });
    const counting = new CountingLedger();
    counting.afterApply = async (n) => {
      if (n === 1) await ledger.apply(12, 'stop', { execution: 1, peerId: 'peer-old' });
    };
    expect(await claimNow(counting, job(12))).toEqual({ ok: false, reason: 'run is stopped' });
    expect(counting.applies).toEqual(['dispatch refused']);
    expect(await ledger.get(12)).toMatchObject({ state: 'stopped' });
  });

  it('when a third peer takes the run over between the re-read and the requeue then the requeue names the old owner and is refused', async () => {
    await submit(13);
    await ledger.apply(13, 'dispatch', { execution: 1, peerId: 'peer-old' });
    const counting = new CountingLedger();
    // The claim's re-read (its second read) says peer-old; peer-c's takeover lands right after it.
    counting.afterRead = async (n) => {
      if (n !== 2) return;
      expect((await ledger.apply(13, 'requeue', { execution: 1, peerId: 'peer-old' })).ok).toBe(true);
      expect((await ledger.apply(13, 'dispatch', { execution: 1, peerId: 'peer-c' })).ok).toBe(true);
    };
    expect(await claimNow(counting, job(13))).toEqual({
      ok: false,
      reason: 'run 13 is held by another peer or execution (now execution 1)',
    });
    expect(counting.applies).toEqual(['dispatch refused', 'requeue refused']);
    expect(await ledger.get(13)).toMatchObject({ state: 'dispatched', peerId: 'peer-c' });
  });

  it('when a third peer dispatches the run between the requeue and the dispatch then the claim is refused and the run stays with that peer', async () => {
    await submit(14);
    await ledger.apply(14, 'dispatch', { execution: 1, peerId: 'peer-old' });
    const counting = new CountingLedger();
    counting.afterApply = async (n) => {
      if (n === 2) await ledger.apply(14, 'dispatch', { execution: 1, peerId: 'peer-c' });
    };
    expect(await claimNow(counting, job(14))).toEqual({
      ok: false,
      reason: 'cannot dispatch a run that is dispatched',
    });
    expect(counting.applies).toEqual(['dispatch refused', 'requeue ok', 'dispatch refused']);
    expect(await ledger.get(14)).toMatchObject({ state: 'dispatched', peerId: 'peer-c' });
  });

  /** Subscribers of a run's acknowledgement channel, as Redis counts them. */
  const listeners = async (runId: number) => {
    const reply = (await redis.call('PUBSUB', 'NUMSUB', keys.runAcknowledged(runId))) as [string, number];
    return reply[1];
  };
  /** Bounds a claim that should be woken at once: the fallback pauses are a minute, so a miss shows as this rejection. */
  const wokenWithin = <T>(claim: Promise<T>) =>
    Promise.race([
      claim,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('the claim was not woken by the acknowledgement')), 10_000).unref(),
      ),
    ]);
  /** What the gateway's acknowledgement script does: acknowledge, then publish the execution on the run's channel. */
  const acknowledgeAndPublish = async (runId: number) => {
    expect(await store.acknowledge(runId, 1, 60_000)).toBe('acked');
    await redis.publish(keys.runAcknowledged(runId), '1');
  };

  it('when the claim listens and the acknowledgement is published while it waits then the message wakes it', async () => {
    await submit(21, true);
    const counting = new CountingLedger(50, true);
    let settled = false;
    const claim = claimRun(counting, job(21), 'peer-a', logger, 600_000).finally(() => {
      settled = true;
    });
    // The first look, then one more once the subscription is answered; then it waits for the message.
    await waitFor('the look after the subscription', () => counting.reads >= 2 || settled);
    expect(settled).toBe(false);
    expect(await listeners(21)).toBe(1);
    await acknowledgeAndPublish(21);
    expect(await wokenWithin(claim)).toEqual({ ok: true });
    expect(counting.reads).toBe(3);
    // The claim left the run's channel.
    await waitFor('the channel left', async () => (await listeners(21)) === 0);
  });

  it('when the acknowledgement is published while the claim is looking then its next wait returns at once', async () => {
    await submit(22, true);
    const counting = new CountingLedger(50, true);
    // The second look read `pending`; the acknowledgement and its message come before the claim sees that.
    counting.afterRead = async (n) => {
      if (n !== 2) return;
      await acknowledgeAndPublish(22);
      // Redis sent the message before this answer: the agent's connection has handled it.
      await events.ping();
    };
    expect(await wokenWithin(claimRun(counting, job(22), 'peer-a', logger, 600_000))).toEqual({ ok: true });
    expect(counting.reads).toBe(3);
  });

  it('when the claim listens and the run is not pending then it never subscribes', async () => {
    await submit(23);
    const counting = new CountingLedger(50, true);
    expect(await claimRun(counting, job(23), 'peer-a', logger)).toEqual({ ok: true });
    expect(counting.reads).toBe(1);
    expect(await listeners(23)).toBe(0);
  });
});
