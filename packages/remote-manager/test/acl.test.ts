import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { Redis } from 'ioredis';
import { closeRedis, createRedis, createRedisKeys, waitForRedis, type RedisKeys } from '@rps/common';
import {
  createTestPki,
  freePort,
  jobReachableTmpDir,
  startRedisServer,
  testLogger,
  TEST_PYTHON,
  uniquePrefix,
  waitFor,
  type TestPki,
  type TestRedisServer,
} from '@rps/common/testing';
import { PeerRedisUsers, type PeerRedisCredentials } from '../src/acl/peer-redis-users';
import {
  runBody,
  serviceMain,
  startFakeIvis,
  startProcess,
  stopProcess,
} from '../../rps-gateway/test/e2e-processes';

// Per-peer Redis users against a real Redis 7 (Debian's redis-server; ACLs
// need nothing in its config): a real agent process authenticated as its
// machine's user runs jobs end to end through a real gateway; that user is
// refused every forbidden command and every key and channel outside the
// pool's prefix; removing it drops its sessions at once and locks it out.

const SUCCEEDS =
  'import json, sys\ndata = json.loads(sys.stdin.readline())\nprint("hello from job", flush=True)\n';
const SLEEPS = 'import sys, time\nsys.stdin.readline()\nprint("sleeping", flush=True)\ntime.sleep(60)\n';
/** A job on a loaded 2-core machine: a Python start, pushes, BullMQ's bookkeeping. */
const JOB_BOUND_MS = 60_000;
/** Processes start and connect. */
const START_BOUND_MS = 30_000;

/** What a forbidden command must answer. */
const FORBIDDEN: Array<[string, ...string[]]> = [
  ['FLUSHALL'],
  ['FLUSHDB'],
  ['CONFIG', 'GET', 'maxmemory'],
  ['CONFIG', 'SET', 'maxmemory', '1'],
  ['KEYS', '*'],
  ['SCAN', '0'],
  ['RANDOMKEY'],
  ['ACL', 'LIST'],
  ['ACL', 'SETUSER', 'intruder', 'on', '>x', '~*', '+@all'],
  ['ACL', 'DELUSER', 'default'],
  ['DEBUG', 'SLEEP', '0'],
  ['SHUTDOWN', 'NOSAVE'],
  ['MODULE', 'LIST'],
  ['SCRIPT', 'FLUSH'],
  ['SCRIPT', 'KILL'],
  ['SCRIPT', 'DEBUG', 'SYNC'],
  ['FUNCTION', 'FLUSH'],
  ['MONITOR'],
  ['CLIENT', 'LIST'],
  ['CLIENT', 'KILL', 'ID', '1'],
  ['CLIENT', 'PAUSE', '1000'],
  ['REPLICAOF', 'NO', 'ONE'],
  ['SAVE'],
  ['BGSAVE'],
  ['BGREWRITEAOF'],
  ['SWAPDB', '0', '1'],
  ['MIGRATE', '127.0.0.1', '1', 'k', '0', '100'],
];

describe('per-peer Redis users', () => {
  let redisServer: TestRedisServer;
  let admin: Redis;
  let keys: RedisKeys;
  let users: PeerRedisUsers;
  let pki: TestPki;
  let ivis: Awaited<ReturnType<typeof startFakeIvis>>;
  let tmp: string;
  let gatewayPort: number;
  let agentProcess: ChildProcess;
  let gatewayProcess: ChildProcess;
  let creds: PeerRedisCredentials;
  let client: https.Agent;
  const logs: string[] = [];
  const agentLogs: string[] = [];
  const opened: Redis[] = [];

  const urlFor = (c: PeerRedisCredentials) =>
    redisServer.url.replace(
      'redis://',
      `redis://${encodeURIComponent(c.username)}:${encodeURIComponent(c.password)}@`,
    );
  /** A plain connection as the peer user, failing fast instead of retrying. */
  const connectAs = async (c: PeerRedisCredentials) => {
    const conn = new Redis(urlFor(c), {
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      lazyConnect: true,
    });
    conn.on('error', () => undefined);
    opened.push(conn);
    await conn.connect();
    return conn;
  };
  /** AUTH as the user on a fresh connection: resolves 'OK' or rejects with Redis's answer (WRONGPASS). */
  const authAs = async (c: PeerRedisCredentials) => {
    const conn = new Redis(redisServer.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    conn.on('error', () => undefined);
    opened.push(conn);
    try {
      return await conn.call('AUTH', c.username, c.password);
    } finally {
      conn.disconnect();
    }
  };
  const call = (method: string, urlPath: string, body?: unknown) =>
    new Promise<number>((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = https.request(
        {
          host: '127.0.0.1',
          port: gatewayPort,
          path: urlPath,
          method,
          agent: client,
          headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {},
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  const statusPushed = (runId: number, status: number) =>
    ivis.received.some(
      (p) => p.path === '/rest/remote/status' && p.body.runId === runId && p.body.status?.status === status,
    );
  const peerSessions = async (username: string) =>
    ((await admin.client('LIST')) as string)
      .split('\n')
      .filter((line) => line.includes(` user=${username} `));

  beforeAll(async () => {
    redisServer = await startRedisServer();
    admin = createRedis({
      url: redisServer.url,
      role: 'worker',
      name: 'manager-admin',
      logger: testLogger(),
    });
    await waitForRedis(admin);
    keys = createRedisKeys(uniquePrefix('acl'));
    users = new PeerRedisUsers(admin, keys);
    creds = await users.create('machine-1');
    pki = createTestPki();
    ivis = await startFakeIvis();
    tmp = jobReachableTmpDir('rps-acl-');
    gatewayPort = await freePort();
    const gatewayConfig = path.join(tmp, 'gateway.json');
    fs.writeFileSync(
      gatewayConfig,
      JSON.stringify({
        redis: { url: redisServer.url, prefix: keys.prefix },
        log: { level: 'info' },
        gateway: {
          listen: { host: '127.0.0.1', port: gatewayPort },
          admin: { host: '127.0.0.1', port: await freePort() },
          tls: pki.paths,
          clients: [pki.clientIdentity],
        },
      }),
    );
    const agentConfig = path.join(tmp, 'agent.json');
    fs.writeFileSync(
      agentConfig,
      JSON.stringify({
        redis: { url: urlFor(creds), prefix: keys.prefix },
        log: { level: 'info' },
        agent: {
          id: 'machine-1',
          address: '127.0.0.1',
          capacity: 1,
          admin: { host: '127.0.0.1', port: await freePort() },
          executor: {
            kind: 'builtin',
            workDir: path.join(tmp, 'machine-1'),
            python: TEST_PYTHON,
            subtypes: { __default__: { libs: [] } },
            allowSameUser: true,
          },
          ivis: { trustedUrlBase: ivis.url, sandboxUrlBase: ivis.url, es: { host: '127.0.0.1', port: 9 } },
        },
      }),
    );
    gatewayProcess = startProcess(serviceMain('rps-gateway'), gatewayConfig, logs);
    agentProcess = startProcess(serviceMain('peer-agent'), agentConfig, agentLogs);
    client = new https.Agent({
      ca: pki.ca.cert,
      cert: pki.client.cert,
      key: pki.client.key,
      keepAlive: true,
    });
    await waitFor(
      'the gateway to answer',
      async () => (await call('GET', '/rps/run/1').catch(() => 0)) === 404,
      {
        timeoutMs: START_BOUND_MS,
        intervalMs: 100,
      },
    );
    await waitFor('the agent to register', async () => (await admin.exists(keys.peer('machine-1'))) === 1, {
      timeoutMs: START_BOUND_MS,
      intervalMs: 100,
    });
  });

  afterAll(async () => {
    client?.destroy();
    for (const conn of opened) conn.disconnect();
    if (agentProcess) await stopProcess(agentProcess);
    if (gatewayProcess) await stopProcess(gatewayProcess);
    if (process.env.E2E_LOGS) process.stderr.write([...logs, ...agentLogs].join('').slice(-20_000));
    await closeRedis(admin);
    await ivis?.close();
    await redisServer?.stop();
    pki?.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('when an agent runs as its machine’s user then it runs a job to success and stops a running one, with no NOPERM', async () => {
    expect(await users.list()).toEqual(['rps-peer-machine-1']);
    expect((await peerSessions(creds.username)).length).toBeGreaterThan(0);
    expect(await call('POST', '/rps/run/1', runBody(1, 1, SUCCEEDS))).toBe(200);
    await waitFor('run 1 to succeed', () => statusPushed(1, 0), { timeoutMs: JOB_BOUND_MS });
    expect(await call('POST', '/rps/run/2', runBody(2, 1, SLEEPS))).toBe(200);
    await waitFor('run 2 to run', () => statusPushed(2, 3), { timeoutMs: JOB_BOUND_MS });
    expect(await call('POST', '/rps/run/2/stop', {})).toBe(200);
    await waitFor('run 2 to end stopped', () => statusPushed(2, 2), { timeoutMs: JOB_BOUND_MS });
    expect(await admin.call('ACL', 'LOG')).toEqual([]);
    expect(agentLogs.join('')).not.toMatch(/NOPERM/);
  });

  it('when the peer user sends a forbidden command then each is refused with NOPERM', async () => {
    const conn = await connectAs(creds);
    for (const [command, ...args] of FORBIDDEN) {
      // ACL DRYRUN asks the ACL alone (DEBUG is also switched off by the server's own config).
      const verdict = String(await admin.call('ACL', 'DRYRUN', creds.username, command, ...args));
      expect([command, verdict]).toEqual([command, expect.stringMatching(/has no permissions to run/)]);
      const refusal = command === 'DEBUG' ? /NOPERM|DEBUG command not allowed/ : /NOPERM/;
      await expect(conn.call(command, ...args)).rejects.toThrow(refusal);
    }
    expect(await admin.ping()).toBe('PONG');
  });

  it('when the peer user touches keys or channels outside the prefix then it is refused, inside it works', async () => {
    const conn = await connectAs(creds);
    await admin.set('other-app:secret', 'x');
    await expect(conn.get('other-app:secret')).rejects.toThrow(/NOPERM/);
    await expect(conn.set('other-app:mine', '1')).rejects.toThrow(/NOPERM/);
    await expect(conn.del('other-app:secret')).rejects.toThrow(/NOPERM/);
    await expect(conn.eval("return redis.call('GET', 'other-app:secret')", 0)).rejects.toThrow(
      /NOPERM|can't access/,
    );
    await expect(conn.publish('other-app:events', 'x')).rejects.toThrow(/NOPERM/);
    const subscriber = await connectAs(creds);
    await expect(subscriber.subscribe('other-app:events')).rejects.toThrow(/NOPERM/);
    const inside = `${keys.prefix}:acl-probe`;
    expect(await conn.set(inside, 'ok')).toBe('OK');
    expect(await conn.eval("return redis.call('GET', KEYS[1])", 1, inside)).toBe('ok');
    expect(await conn.publish(keys.peerEvents(), 'x')).toBeGreaterThanOrEqual(0);
    expect(await admin.get('other-app:secret')).toBe('x');
  });

  it('when a user is created again then the old password stops working and the new one works', async () => {
    const second = await users.create('machine-2');
    const rotated = await users.create('machine-2');
    expect(rotated.password).not.toBe(second.password);
    await expect(authAs(second)).rejects.toThrow(/WRONGPASS/);
    expect(await authAs(rotated)).toBe('OK');
    expect(await (await connectAs(rotated)).ping()).toBe('PONG');
    expect(JSON.stringify(await admin.call('ACL', 'LIST'))).not.toContain(rotated.password);
    await users.remove('machine-2');
  });

  it('when the machine’s user is removed then its sessions drop at once and it cannot authenticate again', async () => {
    const conn = await connectAs(creds);
    const closed = new Promise<void>((resolve) => conn.once('close', () => resolve()));
    await users.remove('machine-1');
    await closed;
    expect(await peerSessions(creds.username)).toEqual([]);
    expect(await admin.call('ACL', 'GETUSER', creds.username)).toBeNull();
    expect(await users.list()).toEqual([]);
    await expect(authAs(creds)).rejects.toThrow(/WRONGPASS/);
    // The agent keeps retrying and keeps being refused: none of its sessions come back.
    await waitFor('the agent to log its refused reconnects', () => /WRONGPASS/.test(agentLogs.join('')), {
      timeoutMs: START_BOUND_MS,
    });
    expect(await peerSessions(creds.username)).toEqual([]);
    await users.remove('machine-1'); // idempotent
  });
});
