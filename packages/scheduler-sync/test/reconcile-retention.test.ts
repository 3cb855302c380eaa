import {
  buildStopPushes,
  CANCELLED_BEFORE_START_REASON,
  closeRedis,
  createRedis,
  createRedisKeys,
  finalPushJobId,
  QUEUES,
  RUN_CANCELLED_MESSAGE,
  RunStore,
  runJobId,
  waitForRedis,
  type PushJobData,
  type RedisKeys,
} from '@rps/common';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startRedisServer,
  testLogger,
  uniquePrefix,
  waitFor,
  type TestRedisServer,
} from '@rps/common/testing';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { createService, type SchedulerService } from '../src/app';
import {
  MISSING_REQUEST_ERROR,
  STOP_REPAIR_HORIZON_MS,
  UNACKNOWLEDGED_ERROR,
} from '../src/services/reconcile.service';
import { RUN_BODY, schedulerConfig, SimulatedPeer } from './helpers';

const meta = { taskId: 7, jobId: 5 };

/** The operator's peer commands (scripts/rps-peer.js), run as the operator would. */
const RPS_PEER = path.resolve(__dirname, '../../../scripts/rps-peer.js');

describe('reconcile and retention ticks', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let keys: RedisKeys;
  let runs: RunStore;
  let service: SchedulerService;
  let runsQueue: Queue;
  let pushesQueue: Queue;

  beforeAll(async () => {
    server = await startRedisServer();
    redis = createRedis({ url: server.url, role: 'worker', name: 'reconcile-test', logger: testLogger() });
    await waitForRedis(redis);
  });

  beforeEach(() => {
    keys = createRedisKeys(uniquePrefix());
    runs = new RunStore(redis, keys);
    runsQueue = new Queue(QUEUES.runs, { connection: redis, prefix: keys.bullPrefix });
    pushesQueue = new Queue(QUEUES.pushes, { connection: redis, prefix: keys.bullPrefix });
  });

  afterEach(async () => {
    await service?.stop();
    await Promise.all([runsQueue.close(), pushesQueue.close()]);
  });

  afterAll(async () => {
    await closeRedis(redis);
    await server.stop();
  });

  function build(retentionMs = 7 * 86_400_000) {
    service = createService({
      config: schedulerConfig({ tickMs: 200, retentionMs }),
      keys,
      redis,
      logger: testLogger(),
      registry: new Registry(),
    });
    return service;
  }

  /** Runs one job of the runs queue to completion, as an agent would after dispatching it. */
  async function completeOneRunJob(): Promise<void> {
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const worker = new Worker(QUEUES.runs, async () => done(), {
      connection: redis,
      prefix: keys.bullPrefix,
    });
    await finished;
    await worker.close();
  }

  it('when a submit was never acknowledged (the gateway answered an error) then the run is failed, not given a job, and never starts', async () => {
    build();
    const past = Date.now() - 10_000;
    await runs.submit(11, RUN_BODY, meta, past, { pending: true });
    // The pending age is on Redis's clock: wait out the grace (2 x tickMs) by ticking.
    const failed = await waitFor(
      'the unacknowledged run failed',
      async () => {
        await service.runTick('reconcile');
        const record = await runs.get(11);
        return record?.state === 'failed' ? record : null;
      },
      { intervalMs: 100 },
    );
    expect(failed).toMatchObject({ execution: 1, pendingSince: '', error: UNACKNOWLEDGED_ERROR });
    expect(await runsQueue.getJob(runJobId(11, 1))).toBeUndefined();
    // IVIS-core got an error for the POST and marked the run failed itself: no push.
    expect(await pushesQueue.getJobCounts('waiting', 'delayed')).toEqual({ waiting: 0, delayed: 0 });
  });

  it('when a pending run is retried by a new POST then reconciliation leaves it to that POST', async () => {
    build();
    await runs.submit(12, RUN_BODY, meta, Date.now() - 10_000, { pending: true });
    // The retry restarts the acknowledgement window on Redis's clock.
    await runs.submit(12, RUN_BODY, meta, Date.now(), { pending: true });
    expect(await service.runTick('reconcile')).toMatchObject({ unacknowledged: 0, jobsAdded: 0 });
    expect(await runs.acknowledge(12, 1, 5000)).toBe('acked');
  });

  it('when a queued run is older than the grace and has no job then its job is added again', async () => {
    build();
    const past = Date.now() - 10_000;
    await runs.submit(1, RUN_BODY, meta, past);
    await runs.submit(2, RUN_BODY, meta); // within the grace: its job may still be on the way

    const summary = await service.runTick('reconcile');

    expect(summary).toMatchObject({ jobsAdded: 1, failed: 0 });
    expect(await (await runsQueue.getJob(runJobId(1, 1)))?.getState()).toBe('waiting');
    expect(await runsQueue.getJob(runJobId(2, 1))).toBeUndefined();
  });

  it('when a queued run has only a finished job then the job is replaced, and a live job is left alone', async () => {
    build();
    const past = Date.now() - 10_000;
    await runs.submit(1, RUN_BODY, meta, past);
    await runsQueue.add('run', { runId: 1, execution: 1 }, { jobId: runJobId(1, 1) });
    await completeOneRunJob();
    await runs.submit(2, RUN_BODY, meta, past);
    await runsQueue.add('run', { runId: 2, execution: 1 }, { jobId: runJobId(2, 1), delay: 60_000 });

    const summary = await service.runTick('reconcile');

    expect(summary).toMatchObject({ jobsReplaced: 1, jobsAdded: 0 });
    expect(await (await runsQueue.getJob(runJobId(1, 1)))?.getState()).toBe('waiting');
    expect(await (await runsQueue.getJob(runJobId(2, 1)))?.getState()).toBe('delayed');
  });

  it('when a queued run lost its request body then it fails with a reason and a final push', async () => {
    build();
    await runs.submit(3, RUN_BODY, meta, Date.now() - 10_000);
    await redis.del(keys.runRequest(3));

    expect(await service.runTick('reconcile')).toMatchObject({ failed: 1 });

    expect(await runs.get(3)).toMatchObject({ state: 'failed', error: MISSING_REQUEST_ERROR });
    // One job, status first, then the fail emit; nothing left in the outbox.
    const push = await pushesQueue.getJob(finalPushJobId(3, 1));
    expect(push?.data).toMatchObject({
      kind: 'sequence',
      runId: 3,
      execution: 1,
      pushes: [
        {
          kind: 'status',
          body: { runId: 3, status: { status: 2 }, output: `${MISSING_REQUEST_ERROR}\n\nLog:\n` },
        },
        { kind: 'emit', body: { type: 'run/3/fail', data: MISSING_REQUEST_ERROR } },
      ],
    });
    expect(await redis.zcard(keys.pushOutboxDue())).toBe(0);
  });

  it('when runs sit on a peer that is unregistered or removed then they are requeued or lost', async () => {
    build();
    const removed = new SimulatedPeer(redis, keys, 'peer-r');
    await removed.register();
    await redis.hset(keys.peer('peer-r'), 'state', 'removed');
    for (const runId of [4, 5]) await runs.submit(runId, RUN_BODY, meta);
    await runs.apply(4, 'dispatch', { peerId: 'peer-ghost' }); // no registration at all
    await runs.apply(5, 'dispatch', { peerId: 'peer-r' });
    await runs.apply(5, 'start', { peerId: 'peer-r' });

    expect(await service.runTick('reconcile')).toMatchObject({ requeued: 1, lost: 1 });

    expect(await runs.get(4)).toMatchObject({ state: 'queued', peerId: '' });
    expect(await runsQueue.getJob(runJobId(4, 1))).toBeDefined();
    expect(await runs.get(5)).toMatchObject({ state: 'lost', error: 'peer peer-r was removed' });
    const lost = (await pushesQueue.getJob(finalPushJobId(5, 1)))?.data as PushJobData;
    expect(
      lost.kind === 'sequence' && lost.pushes[0]?.kind === 'status' && lost.pushes[0].body.output,
    ).toMatch(/^peer peer-r was removed\n/);
  });

  it('when a lost run has no push job nor outbox entry (an older version) then the push is enqueued again, once', async () => {
    build();
    const past = Date.now() - 10_000;
    await runs.submit(6, RUN_BODY, meta, past);
    await runs.apply(6, 'dispatch', { peerId: 'peer-x', now: past });
    await runs.apply(6, 'start', { peerId: 'peer-x', now: past });
    await runs.apply(6, 'lose', {
      peerId: 'peer-x',
      now: past,
      fields: { error: 'peer peer-x lost: no heartbeat for 20 s', finishedAt: new Date(past).toISOString() },
    });

    expect(await service.runTick('reconcile')).toMatchObject({ pushesRepaired: 1 });
    expect(await service.runTick('reconcile')).toMatchObject({ pushesRepaired: 0 });
    const repaired = (await pushesQueue.getJob(finalPushJobId(6, 1)))?.data as PushJobData;
    expect(
      repaired.kind === 'sequence' && repaired.pushes[0]?.kind === 'status' && repaired.pushes[0].body.status,
    ).toMatchObject({ status: 2, finished_at: new Date(past).toISOString() });
  });

  it('when the gateway stopped a run before start but its stop pushes never reached the queue then they are enqueued, once', async () => {
    build();
    const past = Date.now() - 10_000;
    const finishedAt = new Date(past).toISOString();
    const stopFields = { finishedAt, error: RUN_CANCELLED_MESSAGE, reason: CANCELLED_BEFORE_START_REASON };
    await runs.submit(8, RUN_BODY, meta, past);
    await runs.apply(8, 'stop', { now: past, fields: stopFields });
    // Stopped by an agent (no gateway reason): IVIS-core was told by the stop call itself.
    await runs.submit(9, RUN_BODY, meta, past);
    await runs.apply(9, 'stop', { now: past, fields: { finishedAt, error: 'Run Cancelled' } });
    // Stopped before start hours ago: outside the repair horizon, not re-read every tick.
    const longAgo = Date.now() - STOP_REPAIR_HORIZON_MS - 60_000;
    await runs.submit(10, RUN_BODY, meta, longAgo);
    await runs.apply(10, 'stop', { now: longAgo, fields: stopFields });

    expect(await service.runTick('reconcile')).toMatchObject({ pushesRepaired: 1 });
    expect(await service.runTick('reconcile')).toMatchObject({ pushesRepaired: 0 });
    const [status, emit] = buildStopPushes(8, 1, finishedAt);
    expect((await pushesQueue.getJob(status!.jobId))?.data).toEqual(status!.data);
    expect((await pushesQueue.getJob(emit!.jobId))?.data).toEqual(emit!.data);
    expect(await pushesQueue.getJobCounts('waiting')).toEqual({ waiting: 2 });
  });

  it('when final runs and finished jobs are older than the retention then they are removed, others kept', async () => {
    const retentionMs = 300;
    build(retentionMs);
    const old = Date.now() - 10_000;
    await runs.submit(7, RUN_BODY, meta, old);
    await runs.appendOutput(7, 1, 'old output');
    await runs.apply(7, 'fail', { now: old, fields: { error: 'x' } });
    await runs.submit(8, RUN_BODY, meta, old); // old but still queued: reconciliation's, not retention's
    await runsQueue.add('run', { runId: 9, execution: 1 }, { jobId: runJobId(9, 1) });
    await completeOneRunJob();
    await new Promise((r) => setTimeout(r, retentionMs + 100));
    await runs.submit(10, RUN_BODY, meta);
    await runs.apply(10, 'fail', { fields: { error: 'recent' } });

    const summary = await service.runTick('retention');

    expect(summary).toEqual({ runsDeleted: 1, runsKept: 1, jobsTrimmed: 1, peersPruned: 0 });
    expect(await runs.get(7)).toBeNull();
    expect(await redis.exists(keys.runOutput(7), keys.runRequest(7))).toBe(0);
    expect(await redis.zscore(keys.runIndex(), '7')).toBeNull();
    expect((await runs.get(8))?.state).toBe('queued');
    expect((await runs.get(10))?.state).toBe('failed');
    expect(await runsQueue.getJob(runJobId(9, 1))).toBeUndefined();
  });
  it('when an operator removed a peer (rps-peer script) then retention prunes its records after the retention time, stopped peers stay', async () => {
    const retentionMs = 300;
    build(retentionMs);
    const config = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rps-peer-cli-')), 'rps.yaml');
    fs.writeFileSync(config, JSON.stringify({ redis: { url: server.url, prefix: keys.prefix } }));
    const rpsPeer = (...args: string[]) =>
      execFileSync(process.execPath, [RPS_PEER, ...args], {
        env: { ...process.env, RPS_CONFIG: config },
        encoding: 'utf8',
      });
    const longAgo = Date.now() - 3_600_000;
    for (const id of ['peer-gone', 'peer-recent', 'peer-stopped'])
      await new SimulatedPeer(redis, keys, id).register(longAgo);
    await redis.hset(keys.peer('peer-stopped'), 'state', 'stopped');
    const leftovers = (id: string) => [
      keys.peerRuns(id),
      keys.peerControl(id),
      keys.peerSync(id),
      keys.peerAddressHistory(id),
    ];
    for (const id of ['peer-gone', 'peer-recent']) {
      await redis
        .multi()
        .sadd(keys.peerRuns(id), '99')
        .xadd(keys.peerControl(id), '*', 'command', '{}')
        .hset(keys.peerSync(id), 'ok', '1')
        .lpush(keys.peerAddressHistory(id), '{}')
        .exec();
    }
    expect(rpsPeer('remove', 'peer-gone')).toBe('peer-gone: removed\n');
    expect(await redis.hget(keys.peer('peer-gone'), 'state')).toBe('removed');
    expect(await service.runTick('retention')).toMatchObject({ peersPruned: 0 });

    await new Promise((r) => setTimeout(r, retentionMs + 100));
    expect(rpsPeer('remove', 'peer-recent')).toBe('peer-recent: removed\n');
    expect(await service.runTick('retention')).toMatchObject({ peersPruned: 1 });

    expect(await redis.exists(keys.peer('peer-gone'), ...leftovers('peer-gone'))).toBe(0);
    expect(await redis.zscore(keys.peers(), 'peer-gone')).toBeNull();
    expect(await redis.exists(...leftovers('peer-recent'))).toBe(4);
    expect(await redis.hget(keys.peer('peer-recent'), 'state')).toBe('removed');
    expect(await redis.hget(keys.peer('peer-stopped'), 'state')).toBe('stopped');
    expect(await redis.zscore(keys.peers(), 'peer-stopped')).not.toBeNull();
  });
});
