import { closeRedis, createRedis, createRedisKeys, waitForRedis, type RedisKeys } from '@rps/common';
import {
  startRedisServer,
  testLogger,
  uniquePrefix,
  waitFor,
  type TestRedisServer,
} from '@rps/common/testing';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { createService, type SchedulerService } from '../src/app';
import { schedulerConfig, SimulatedPeer } from './helpers';

// Issue 10 item 5: while Redis is unreachable no agent can heartbeat, so a
// live peer must not be declared lost for silence that Redis caused.
const HEARTBEAT_TIMEOUT_MS = 1500;

describe('liveness across Redis outages', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let keys: RedisKeys;
  let service: SchedulerService | undefined;

  beforeEach(async () => {
    server = await startRedisServer({ appendonly: true, debug: true });
    redis = createRedis({ url: server.url, role: 'worker', name: 'outage-test', logger: testLogger() });
    await waitForRedis(redis);
    keys = createRedisKeys(uniquePrefix());
  });
  afterEach(async () => {
    await service?.stop();
    service = undefined;
    await closeRedis(redis);
    await server.stop();
  });

  // Scheduled ticks far apart by default: the tests run the liveness tick themselves.
  const build = (tuning = {}, tickMs = 60_000) =>
    createService({
      config: schedulerConfig({ heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS, tickMs }),
      keys,
      redis,
      logger: testLogger(),
      registry: new Registry(),
      tuning: { redisProbeMs: 100, ...tuning },
    });
  const peerState = () => redis.hget(keys.peer('peer-a'), 'state');

  it('when Redis restarted while the scheduler was down then a peer silent since before the restart is not lost until Redis has been up a whole timeout', async () => {
    const peer = new SimulatedPeer(redis, keys, 'peer-a');
    // Its last heartbeat made it into the AOF well over a timeout ago.
    await peer.register(Date.now() - 3 * HEARTBEAT_TIMEOUT_MS);
    const restartedAt = Date.now();
    await server.restart();
    await waitForRedis(redis);
    service = build();
    await service.runTick('liveness');
    expect(await peerState()).toBe('active');
    // The hold is bounded: once Redis has been up a whole timeout, silence counts again.
    await waitFor(
      'the silent peer lost after the hold',
      async () => {
        await service!.runTick('liveness');
        return (await peerState()) === 'lost';
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    expect(Date.now() - restartedAt).toBeGreaterThanOrEqual(HEARTBEAT_TIMEOUT_MS);
  });

  it('when Redis stalls (DEBUG SLEEP) longer than the timeout then a live peer is not lost right after it wakes', async () => {
    service = build();
    await service.start();
    const peer = new SimulatedPeer(redis, keys, 'peer-a');
    await peer.register();
    // Redis's own start time must not be what saves the peer here: only the probe's gap.
    await waitFor('redis up longer than a timeout', async () => {
      const uptime = Number(/uptime_in_seconds:(\d+)/.exec(await redis.info('server'))?.[1]);
      return uptime * 1000 > HEARTBEAT_TIMEOUT_MS + 1000;
    });
    await peer.heartbeat();
    const sleeper = redis.duplicate();
    await sleeper.call('DEBUG', 'SLEEP', '2.5');
    sleeper.disconnect();
    // The agent's heartbeat is now older than the timeout, through no fault of its own.
    expect(Date.now() - peer.lastHeartbeat).toBeGreaterThan(HEARTBEAT_TIMEOUT_MS);
    await service.runTick('liveness');
    expect(await peerState()).toBe('active');
  });

  it('when Redis restarts (twice) then the scheduled ticks resume by themselves and a silent peer is still found lost', async () => {
    // BullMQ workers are known to stop silently after reconnects; these must not.
    service = build({}, 200);
    await service.start();
    const ticks = async () =>
      (await service!.metrics.ticks.get()).values.find((v) => v.labels.tick === 'liveness')?.value ?? 0;
    await waitFor('a first liveness tick', async () => (await ticks()) > 0);
    for (let i = 0; i < 2; i++) {
      await server.restart();
      await waitForRedis(redis);
    }
    const peer = new SimulatedPeer(redis, keys, 'peer-a');
    await peer.register(Date.now() - 3 * HEARTBEAT_TIMEOUT_MS);
    // Lost once Redis has been up a heartbeat timeout, by the schedule alone (no runTick here).
    // Generous: under Stryker's instrumentation on the loaded 2-core machine 15 s was not enough.
    await waitFor('the silent peer lost by a scheduled tick', async () => (await peerState()) === 'lost', {
      timeoutMs: 60_000,
    });
  }, 120_000);
});
