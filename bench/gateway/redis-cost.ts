/**
 * What one accepted run costs Redis (`node bench/gateway/dist/redis-cost.js
 * [--runs N] [--concurrency N]`, after `npm run build` and `tsc -p
 * bench/gateway`). Not part of the test suite.
 *
 * The gateway's own stores (RunSubmitStore, RunAckStore, from
 * packages/rps-gateway/dist) drive a redis-server of their own (AOF on,
 * `appendfsync everysec`, as in run.ts) with the run body of run.ts, with
 * `--concurrency` runs in flight (so group commit batches them as under load).
 * Beside them, in the same run, the naive durable server's write (one MULTI:
 * SET body, RPUSH id) for the same bodies. Printed per run, for each phase:
 *
 * - `redisCpuUs`: the redis-server process's CPU (all threads, /proc);
 * - `scriptUs`: time Redis spent in the phase's scripts (INFO commandstats,
 *   `evalsha`), and `luaUs` the part of it not spent in the Redis commands
 *   the scripts called (the interpreter's own overhead);
 * - `calls`: Redis commands per run, by name;
 * - `clientCpuUs`: this process's CPU per run: the gateway's side of the
 *   same stores (ioredis, the group commit), apart from HTTP and TLS.
 *
 * Redis's CPU is what bounds accepted runs/s once the gateway's thread is
 * not the limit (docs/gateway.md), and unlike a throughput it holds on a
 * loaded machine: compare variants of the scripts with this.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRedis, closeRedis, createRedisKeys, QUEUES, waitForRedis, type RedisKeys } from '@rps/common';
import { testLogger, type TestRedisServer } from '@rps/common/testing';
import { RunAckStore } from '@rps/rps-gateway/dist/stores/run-ack.store';
import { RunSubmitStore } from '@rps/rps-gateway/dist/stores/run-submit.store';
import { processCpuMs, redisPid } from './proc';
import { runBody, settleAof, startRedis, taskTar } from './run';

interface Args {
  runs: number;
  concurrency: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { runs: 20_000, concurrency: 16 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = Number(argv[i + 1]);
    if (flag === '--runs' && value > 0) args.runs = value;
    else if (flag === '--concurrency' && value > 0) args.concurrency = value;
    else throw new Error(`unknown or bad argument: ${flag} (use --runs N, --concurrency N)`);
    i++;
  }
  return args;
}

type CommandStats = Map<string, { calls: number; usec: number }>;

async function commandStats(redis: Redis): Promise<CommandStats> {
  const stats: CommandStats = new Map();
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (m) stats.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return stats;
}

/** Runs `task(i)` for i = 0..runs-1 with `concurrency` in flight. */
async function inFlight(runs: number, concurrency: number, task: (i: number) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < runs) await task(next++);
    }),
  );
}

/** Redis's CPU, script time and commands per run while `work` runs `runs` runs. */
async function measure(redis: Redis, url: string, pid: number, runs: number, work: () => Promise<void>) {
  await settleAof(url);
  const before = await commandStats(redis);
  const cpu = processCpuMs(pid).own;
  const client = process.cpuUsage();
  const started = Date.now();
  await work();
  const seconds = (Date.now() - started) / 1000;
  const cpuUs = ((processCpuMs(pid).own - cpu) * 1000) / runs;
  const clientUsed = process.cpuUsage(client);
  const after = await commandStats(redis);
  const calls: Record<string, number> = {};
  let scriptUs = 0;
  let innerUs = 0;
  for (const [name, { calls: n, usec }] of after) {
    const was = before.get(name) ?? { calls: 0, usec: 0 };
    // The bench's own INFO and BGREWRITEAOF are not the phase's.
    if (n === was.calls || name === 'info' || name === 'bgrewriteaof') continue;
    calls[name] = Math.round(((n - was.calls) / runs) * 100) / 100;
    if (name === 'evalsha' || name === 'eval') scriptUs += usec - was.usec;
    else if (name !== 'exec' && name !== 'multi') innerUs += usec - was.usec;
  }
  const perRun = (us: number) => Math.round((us / runs) * 10) / 10;
  return {
    runsPerSecond: Math.round(runs / seconds),
    redisCpuUs: Math.round(cpuUs),
    scriptUs: perRun(scriptUs),
    luaUs: scriptUs > 0 ? perRun(scriptUs - innerUs) : 0,
    commandUs: perRun(innerUs),
    clientCpuUs: perRun(clientUsed.user + clientUsed.system),
    calls,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const server: TestRedisServer = await startRedis();
  const logger = testLogger();
  const redis = createRedis({ url: server.url, role: 'request', name: 'bench-cost', logger });
  const admin = createRedis({ url: server.url, role: 'worker', name: 'bench-cost-admin', logger });
  try {
    await Promise.all([waitForRedis(redis), waitForRedis(admin)]);
    const pid = await redisPid(server.url);
    const keys: RedisKeys = createRedisKeys('{bench}');
    const queue = new Queue(QUEUES.runs, { connection: redis, prefix: keys.bullPrefix });
    const submits = new RunSubmitStore(redis, keys, queue);
    const acks = new RunAckStore(redis, keys);
    // run.ts's small run: one small file, which tar pads to 10 KiB (~21 kB of JSON).
    // One body for every run: the stores do not read its runId, and building
    // it per run would make the bench's own CPU the limit.
    const body = runBody(taskTar(0, false));
    const executions = new Map<number, number>();
    console.log(
      JSON.stringify({ scenario: 'redis-cost', ...args, bodyBytes: body.length, redis: server.url }),
    );

    const naive = await measure(admin, server.url, pid, args.runs, () =>
      inFlight(args.runs, args.concurrency, async (i) => {
        await redis
          .multi()
          .set(`{ref}:run:${i + 1}`, body)
          .rpush('{ref}:queue', String(i + 1))
          .exec();
      }),
    );
    console.log(JSON.stringify({ phase: 'naive durable MULTI', ...naive }));

    const submit = await measure(admin, server.url, pid, args.runs, () =>
      inFlight(args.runs, args.concurrency, async (i) => {
        const runId = i + 1;
        const result = await submits.submitAndEnqueue(runId, body, { taskId: 7, jobId: 5 });
        executions.set(runId, result.execution);
      }),
    );
    console.log(JSON.stringify({ phase: 'gateway submit + job', ...submit }));

    const ack = await measure(admin, server.url, pid, args.runs, () =>
      inFlight(args.runs, args.concurrency, async (i) => {
        const runId = i + 1;
        const execution = executions.get(runId)!;
        // As the gateway does for a new execution: its `queued` event is published by the script.
        await acks.acknowledge(runId, execution, 60_000, {
          runId,
          execution,
          state: 'queued',
          peerId: '',
          at: Date.now(),
        });
      }),
    );
    console.log(JSON.stringify({ phase: 'gateway acknowledge', ...ack }));
    console.log(
      JSON.stringify({
        phase: 'gateway over naive',
        redisCpu: Math.round(((submit.redisCpuUs + ack.redisCpuUs) / naive.redisCpuUs) * 100) / 100,
      }),
    );
    await queue.close();
  } finally {
    await closeRedis(redis);
    await closeRedis(admin);
    await server.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
