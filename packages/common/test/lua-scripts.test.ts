import path from 'node:path';
import { closeRedis, createRedis, loadLuaScript, waitForRedis } from '@rps/common';
import { startRedisServer, testLogger, uniquePrefix, type TestRedisServer } from '@rps/common/testing';
import type { Redis } from 'ioredis';

// Stryker does not mutate Lua, so the run state scripts and liveness's
// mark-lost script get a table of their own: each row is an initial Redis
// state, the script's ARGV, and the reply and whole resulting state expected.
// Every guard in a script has a row that fails when the guard is removed
// (docs/testing.md, "Lua scripts").

/** A key's content: a hash, a sorted set (member -> score), a set or a string. */
type Value =
  Record<string, string> | { zset: Record<string, number> } | { set: string[] } | { string: string };
type State = Record<string, Value>;

interface Row {
  name: string;
  /** Keys by role; the row's Redis state names keys by these roles. */
  keys: string[];
  before: State;
  argv: string[];
  reply: unknown;
  /** Defaults to `before`: a refusal leaves everything as it was. */
  after?: State;
}

interface Script {
  dir: string;
  name: string;
  rows: Row[];
}

const COMMON_LUA = path.join(__dirname, '..', 'lua');
const SCHEDULER_LUA = path.join(__dirname, '..', '..', 'scheduler-sync', 'lua');
/** Far before any Redis clock / far after it, for the scripts that read TIME. */
const LONG_AGO = '1';
const FAR_FUTURE = '99999999999999';
const FINALS = 'succeeded,failed,stopped,lost';

const RUN = { runId: '7', state: 'queued', execution: '2', peerId: '' };
const RUNNING = { ...RUN, state: 'running', peerId: 'peer-a' };

/** run-apply-5's ARGV: allowed states, new state, execution, owner, peer to record, peer-runs op, now, outbox, no announcement. */
const apply = (over: Partial<Record<'allowed' | 'to' | 'execution' | 'owner' | 'record' | 'op', string>>) => [
  over.allowed ?? 'queued',
  over.to ?? 'dispatched',
  over.execution ?? '',
  over.owner ?? '',
  over.record ?? '-',
  over.op ?? 'none',
  '1000',
  '',
  '',
  '0',
  '',
  '',
];

const scripts: Script[] = [
  {
    dir: COMMON_LUA,
    name: 'run-apply',
    rows: [
      {
        name: 'when there is no record then nothing is written',
        keys: ['run', 'index', 'peerRuns', 'outbox', 'due'],
        before: {},
        argv: apply({}),
        reply: [0, '', ''],
      },
      {
        name: 'when the current state is not an allowed one then it is refused',
        keys: ['run', 'index', 'peerRuns', 'outbox', 'due'],
        before: { run: RUNNING },
        argv: apply({ allowed: 'queued,dispatched', to: 'running' }),
        reply: [0, 'running', '2'],
      },
      {
        name: 'when the allowed list holds the state among others then it applies',
        keys: ['run', 'index', 'peerRuns', 'outbox', 'due'],
        before: { run: RUN },
        argv: apply({ allowed: 'dispatched,queued', record: 'peer-b', op: 'add' }),
        reply: [1, 'dispatched', '2'],
        after: {
          run: { ...RUN, state: 'dispatched', peerId: 'peer-b', updatedAt: '1000' },
          index: { zset: { '7': 1000 } },
          peerRuns: { set: ['7'] },
        },
      },
      {
        name: 'when an allowed state is only a prefix of the current one then it is refused',
        keys: ['run', 'index', 'peerRuns', 'outbox', 'due'],
        before: { run: RUNNING },
        argv: apply({ allowed: 'run', to: 'stopped' }),
        reply: [0, 'running', '2'],
      },
      {
        name: 'when the execution differs then it is refused',
        keys: ['run', 'index', 'peerRuns', 'outbox', 'due'],
        before: { run: RUNNING },
        argv: apply({ allowed: 'running', to: 'succeeded', execution: '1' }),
        reply: [0, 'running', '2'],
      },
      {
        name: 'when the owner differs then it is refused',
        keys: ['run', 'index', 'peerRuns', 'outbox', 'due'],
        before: { run: RUNNING },
        argv: apply({ allowed: 'running', to: 'succeeded', execution: '2', owner: 'peer-b' }),
        reply: [0, 'running', '2'],
      },
      {
        name: 'when execution and owner match then the state, peer, fields, index, peer runs and outbox are written',
        keys: ['run', 'index', 'peerRuns', 'outbox', 'due'],
        before: { run: RUNNING, peerRuns: { set: ['7', '8'] } },
        argv: [
          'running',
          'succeeded',
          '2',
          'peer-a',
          '',
          'rem',
          '2000',
          'push-1',
          '{"x":1}',
          '2500',
          '',
          '',
          'finishedAt',
          '2000',
        ],
        reply: [1, 'succeeded', '2'],
        after: {
          run: { ...RUNNING, state: 'succeeded', peerId: '', updatedAt: '2000', finishedAt: '2000' },
          index: { zset: { '7': 2000 } },
          peerRuns: { set: ['8'] },
          outbox: { 'push-1': '{"x":1}' },
          due: { zset: { 'push-1': 2500 } },
        },
      },
      {
        name: "when the peer to record is '-' then the recorded peer is kept",
        keys: ['run', 'index', 'peerRuns', 'outbox', 'due'],
        before: { run: RUNNING },
        argv: apply({ allowed: 'running', to: 'stopped' }),
        reply: [1, 'stopped', '2'],
        after: { run: { ...RUNNING, state: 'stopped', updatedAt: '1000' }, index: { zset: { '7': 1000 } } },
      },
    ],
  },
  {
    dir: COMMON_LUA,
    name: 'run-acknowledge',
    rows: [
      {
        name: 'when there is no record then gone',
        keys: ['run'],
        before: {},
        argv: ['2', '1500'],
        reply: 'gone',
      },
      {
        name: 'when the execution differs then changed and the pending mark stays',
        keys: ['run'],
        before: { run: { ...RUN, pendingSince: FAR_FUTURE } },
        argv: ['3', '1500'],
        reply: 'changed',
      },
      {
        name: 'when nothing is pending then acked without a write',
        keys: ['run'],
        before: { run: { ...RUN, pendingSince: '' } },
        argv: ['2', '1500'],
        reply: 'acked',
      },
      {
        name: 'when an older agent took the pending run already then acked and the mark goes',
        keys: ['run'],
        before: { run: { ...RUN, state: 'dispatched', pendingSince: LONG_AGO } },
        argv: ['2', '1500'],
        reply: 'acked',
        after: { run: { ...RUN, state: 'dispatched' } },
      },
      {
        name: 'when the run ended meanwhile then final and the mark stays',
        keys: ['run'],
        before: { run: { ...RUN, state: 'failed', pendingSince: FAR_FUTURE } },
        argv: ['2', '1500'],
        reply: 'final',
      },
      {
        name: 'when the acknowledgement comes after the allowed time then late and the run stays pending',
        keys: ['run'],
        before: { run: { ...RUN, pendingSince: LONG_AGO } },
        argv: ['2', '1500'],
        reply: 'late',
      },
      {
        name: 'when the acknowledgement comes in time then acked and the mark goes',
        keys: ['run'],
        before: { run: { ...RUN, pendingSince: FAR_FUTURE } },
        argv: ['2', '1500'],
        reply: 'acked',
        after: { run: RUN },
      },
    ],
  },
  {
    dir: COMMON_LUA,
    name: 'run-fail-pending',
    rows: [
      {
        name: 'when the run is not queued then it is not failed',
        keys: ['run', 'index'],
        before: { run: { ...RUN, state: 'dispatched', pendingSince: LONG_AGO } },
        argv: ['2', '0', 'failed', '1000'],
        reply: 0,
      },
      {
        name: 'when the execution differs then it is not failed',
        keys: ['run', 'index'],
        before: { run: { ...RUN, pendingSince: LONG_AGO } },
        argv: ['1', '0', 'failed', '1000'],
        reply: 0,
      },
      {
        name: 'when the submit was acknowledged then it is not failed',
        keys: ['run', 'index'],
        before: { run: { ...RUN, pendingSince: '' } },
        argv: ['2', '0', 'failed', '1000'],
        reply: 0,
      },
      {
        name: 'when the run is pending for less than the minimum age then it is not failed',
        keys: ['run', 'index'],
        before: { run: { ...RUN, pendingSince: FAR_FUTURE } },
        argv: ['2', '5000', 'failed', '1000'],
        reply: 0,
      },
      {
        name: 'when the run is pending for longer than the minimum age then it fails with its fields and leaves the index at now',
        keys: ['run', 'index'],
        before: { run: { ...RUN, pendingSince: LONG_AGO } },
        argv: ['2', '5000', 'failed', '1000', 'error', 'never acknowledged'],
        reply: 1,
        after: {
          run: { ...RUN, state: 'failed', updatedAt: '1000', error: 'never acknowledged' },
          index: { zset: { '7': 1000 } },
        },
      },
    ],
  },
  {
    dir: COMMON_LUA,
    name: 'run-mark-running',
    rows: [
      {
        name: 'when the run is not running then nothing is written',
        keys: ['run'],
        before: { run: { ...RUNNING, state: 'stopped', phase: 'building' } },
        argv: ['2', '500', '1000'],
        reply: 0,
      },
      {
        name: 'when the execution differs then nothing is written',
        keys: ['run'],
        before: { run: { ...RUNNING, phase: 'building' } },
        argv: ['1', '500', '1000'],
        reply: 0,
      },
      {
        name: 'when that execution is running then the phase clears and startedAt is set',
        keys: ['run'],
        before: { run: { ...RUNNING, phase: 'building' } },
        argv: ['2', '500', '1000'],
        reply: 1,
        after: { run: { ...RUNNING, phase: '', startedAt: '500', updatedAt: '1000' } },
      },
    ],
  },
  {
    dir: COMMON_LUA,
    name: 'run-append-output',
    rows: [
      {
        name: 'when the record is gone then no output is recreated',
        keys: ['run', 'output'],
        before: {},
        argv: ['2', 'late'],
        reply: -1,
      },
      {
        name: 'when another execution owns the record then the chunk is dropped',
        keys: ['run', 'output'],
        before: { run: RUN, output: { string: 'abc' } },
        argv: ['1', 'late'],
        reply: -1,
      },
      {
        name: 'when the execution matches then the chunk is appended',
        keys: ['run', 'output'],
        before: { run: RUN, output: { string: 'abc' } },
        argv: ['2', 'de'],
        reply: 5,
        after: { run: RUN, output: { string: 'abcde' } },
      },
    ],
  },
  {
    dir: COMMON_LUA,
    name: 'run-submit',
    rows: [
      {
        name: 'when the run is live then nothing changes and its execution is answered',
        keys: ['run', 'request', 'output', 'index'],
        before: { run: RUNNING, request: { string: 'old' } },
        argv: ['7', 'new', '1', '1', '1000', FINALS, '1'],
        reply: ['existing', '2', 'running', '0'],
      },
      {
        name: 'when a live run is still pending then the retry restarts its window',
        keys: ['run', 'request', 'output', 'index'],
        before: { run: { ...RUN, pendingSince: LONG_AGO } },
        argv: ['7', 'new', '1', '1', '1000', FINALS, '1'],
        reply: ['existing', '2', 'queued', '1'],
        after: { run: { ...RUN, pendingSince: expect.not.stringMatching(/^1$/) as unknown as string } },
      },
      {
        name: 'when the run ended then a new execution starts from a clean record and output',
        keys: ['run', 'request', 'output', 'index'],
        before: { run: { ...RUNNING, state: 'failed', error: 'x' }, output: { string: 'old output' } },
        argv: ['7', 'new', '3', '4', '1000', FINALS, '0'],
        reply: ['resubmitted', '3', 'queued', '0'],
        after: {
          run: {
            runId: '7',
            state: 'queued',
            execution: '3',
            peerId: '',
            taskId: '3',
            jobId: '4',
            createdAt: '1000',
            updatedAt: '1000',
            startedAt: '',
            finishedAt: '',
            error: '',
            reason: '',
          },
          request: { string: 'new' },
          index: { zset: { '7': 1000 } },
        },
      },
    ],
  },
  {
    dir: SCHEDULER_LUA,
    name: 'peer-mark-lost',
    rows: [
      {
        name: 'when the peer has no heartbeat entry then it is not marked',
        keys: ['peer', 'peers'],
        before: { peer: { state: 'active' } },
        argv: ['peer-a', '5000', '9000'],
        reply: '',
      },
      {
        name: 'when the heartbeat is at the cutoff or later then it is not marked (the re-check)',
        keys: ['peer', 'peers'],
        before: { peer: { state: 'active' }, peers: { zset: { 'peer-a': 5000 } } },
        argv: ['peer-a', '5000', '9000'],
        reply: '',
      },
      {
        name: 'when the peer hash is gone then it is not recreated',
        keys: ['peer', 'peers'],
        before: { peers: { zset: { 'peer-a': 1000 } } },
        argv: ['peer-a', '5000', '9000'],
        reply: '',
      },
      ...['lost', 'removed', 'stopped'].map((state) => ({
        name: `when the peer is ${state} then it is left ${state}`,
        keys: ['peer', 'peers'],
        before: { peer: { state, lostAt: '1' }, peers: { zset: { 'peer-a': 1000 } } },
        argv: ['peer-a', '5000', '9000'],
        reply: '',
      })),
      {
        name: 'when the peer is silent since before the cutoff then it is lost with its last heartbeat',
        keys: ['peer', 'peers'],
        before: { peer: { state: 'active' }, peers: { zset: { 'peer-a': 4999 } } },
        argv: ['peer-a', '5000', '9000'],
        reply: '4999',
        after: { peer: { state: 'lost', lostAt: '9000' }, peers: { zset: { 'peer-a': 4999 } } },
      },
    ],
  },
];

describe('Lua scripts, table-driven against a real Redis', () => {
  let server: TestRedisServer;
  let redis: Redis;

  beforeAll(async () => {
    server = await startRedisServer();
    redis = createRedis({ url: server.url, role: 'worker', name: 'lua-table-test', logger: testLogger() });
    await waitForRedis(redis);
  });
  afterAll(async () => {
    await closeRedis(redis);
    await server.stop();
  });

  const write = async (key: string, value: Value) => {
    if ('zset' in value) {
      const zset = value.zset as Record<string, number>;
      for (const [member, score] of Object.entries(zset)) await redis.zadd(key, score, member);
    } else if ('set' in value) await redis.sadd(key, ...(value.set as unknown as string[]));
    else if ('string' in value) await redis.set(key, value.string);
    else await redis.hset(key, value);
  };
  const read = async (key: string): Promise<Value | undefined> => {
    switch (await redis.type(key)) {
      case 'none':
        return undefined;
      case 'zset': {
        const flat = await redis.zrange(key, 0, -1, 'WITHSCORES');
        const zset: Record<string, number> = {};
        for (let i = 0; i < flat.length; i += 2) zset[flat[i]!] = Number(flat[i + 1]);
        return { zset };
      }
      case 'set':
        return { set: (await redis.smembers(key)).sort() };
      case 'string':
        return { string: (await redis.get(key))! };
      default:
        return redis.hgetall(key);
    }
  };

  describe.each(scripts.map((s) => [s.name, s] as const))('%s', (_name, script) => {
    const { lua } = loadLuaScript(script.dir, script.name);
    it.each(script.rows.map((row) => [row.name, row] as const))('%s', async (_rowName, row) => {
      const prefix = uniquePrefix('lua');
      const keyOf = (role: string) => `${prefix}:${role}`;
      for (const [role, value] of Object.entries(row.before)) await write(keyOf(role), value);

      const reply: unknown = await redis.eval(lua, row.keys.length, ...row.keys.map(keyOf), ...row.argv);

      expect(reply).toEqual(row.reply);
      const after: State = {};
      for (const role of row.keys) {
        const value = await read(keyOf(role));
        if (value !== undefined) after[role] = value;
      }
      const expected = row.after ?? row.before;
      const normalized: State = {};
      for (const [role, value] of Object.entries(expected))
        normalized[role] = 'set' in value ? { set: [...value.set].sort() } : value;
      expect(after).toEqual(normalized);
    });
  });
});
