import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { Redis } from 'ioredis';
import { closeRedis, createRedis, createRedisKeys, waitForRedis, type RedisKeys } from '@rps/common';
import {
  freePort,
  startRedisServer,
  testLogger,
  uniquePrefix,
  waitFor,
  type TestRedisServer,
} from '@rps/common/testing';
import { LocalCa, type IssuedCertificate } from '../src/ca/local-ca';
import { CaRevocationStore } from '../src/stores/ca-revocation.store';
import { serviceMain, startProcess, stopProcess } from '../../rps-gateway/test/e2e-processes';
import { tempDir } from './ca-fixtures';

// Revocation end to end: a real rps-gateway process (from dist/, default
// revocation settings) with its certificates from LocalCa; IVIS-core's client
// certificate from LocalCa submits; after LocalCa.revoke the gateway refuses it,
// on new connections, on resumed TLS sessions and on a keep-alive connection
// that was already open. The issue asks for "within a second"; the bounds
// below are generous for a loaded 2-core machine and the elapsed time is printed.

/** How long a revocation may take to show: the gateway's default recheck (500 ms) plus a loaded machine's scheduling. */
const REVOCATION_BOUND_MS = 10_000;
/** The gateway process starts, connects to Redis and listens. */
const START_BOUND_MS = 30_000;

interface Answer {
  status: number;
  body: string;
  socket: TLSSocket;
  /** The TLS session was resumed (read while the connection is open). */
  reused: boolean;
}

function request(
  port: number,
  agent: https.Agent,
  caPem: string,
  method: string,
  urlPath: string,
  body?: unknown,
) {
  return new Promise<Answer>((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    let socket: TLSSocket | undefined;
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        method,
        agent,
        ca: caPem,
        headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {},
      },
      (res) => {
        const reused = socket?.isSessionReused() ?? false;
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, socket: socket!, reused }));
      },
    );
    req.on('socket', (s) => (socket = s as TLSSocket));
    req.on('error', reject);
    req.end(data);
  });
}

const agentFor = (cert: IssuedCertificate, keepAlive: boolean) =>
  new https.Agent({ cert: cert.certPem, key: cert.keyPem, ca: cert.caPem, keepAlive, maxSockets: 1 });

const runBody = (runId: number) => ({
  params: {},
  entities: { signalSets: {}, signals: {} },
  owned: { signalSets: {} },
  type: 'python',
  codeArchive: { type: 'Buffer', data: [46, 47, 0, 0, 0, 0, 0, 0] },
  accessToken: null,
  state: null,
  jobId: 5,
  runId,
  taskId: 7,
});

describe('revocation through LocalCa at a real gateway', () => {
  let redisServer: TestRedisServer;
  let redis: Redis;
  let keys: RedisKeys;
  let tmp: ReturnType<typeof tempDir>;
  let ca: LocalCa;
  let revocations: CaRevocationStore;
  let gateway: ChildProcess;
  let port: number;
  let ivisCore: IssuedCertificate;
  let ivisCore2: IssuedCertificate;
  const logs: string[] = [];
  let runId = 7000;

  beforeAll(async () => {
    redisServer = await startRedisServer();
    tmp = tempDir('revocation');
    ca = await LocalCa.init(path.join(tmp.dir, 'ca'), { keyBits: 2048 });
    const server = await ca.issue({ kind: 'server', commonName: 'rps-gateway', ips: ['127.0.0.1'] });
    ivisCore = await ca.issue({ kind: 'client', commonName: 'ivis-core' });
    ivisCore2 = await ca.issue({ kind: 'client', commonName: 'ivis-core-2' });
    const files = { ca: 'ca.cert', cert: 'svr.pem', key: 'svr.key' };
    fs.writeFileSync(path.join(tmp.dir, files.ca), ca.caPem);
    fs.writeFileSync(path.join(tmp.dir, files.cert), server.certPem);
    fs.writeFileSync(path.join(tmp.dir, files.key), server.keyPem, { mode: 0o600 });
    const prefix = uniquePrefix('rev');
    keys = createRedisKeys(prefix);
    redis = createRedis({
      url: redisServer.url,
      role: 'worker',
      name: 'revocation-test',
      logger: testLogger(),
    });
    await waitForRedis(redis);
    revocations = new CaRevocationStore(redis, keys);
    port = await freePort();
    const config = path.join(tmp.dir, 'gateway.json');
    fs.writeFileSync(
      config,
      JSON.stringify({
        redis: { url: redisServer.url, prefix },
        log: { level: 'info' },
        gateway: {
          listen: { host: '127.0.0.1', port },
          admin: { host: '127.0.0.1', port: await freePort() },
          tls: {
            ca: path.join(tmp.dir, files.ca),
            cert: path.join(tmp.dir, files.cert),
            key: path.join(tmp.dir, files.key),
          },
          clients: [
            { name: 'ivis-core', fingerprint256: ivisCore.info.fingerprint256 },
            { name: 'ivis-core-2', fingerprint256: ivisCore2.info.fingerprint256 },
          ],
        },
      }),
    );
    gateway = startProcess(serviceMain('rps-gateway'), config, logs);
    const probe = agentFor(ivisCore2, false);
    await waitFor(
      'the gateway to answer',
      async () =>
        (await request(port, probe, ca.caPem, 'GET', '/rps/run/1').catch(() => null))?.status === 404,
      { timeoutMs: START_BOUND_MS, intervalMs: 100 },
    );
    probe.destroy();
  });

  afterAll(async () => {
    if (gateway) await stopProcess(gateway);
    await closeRedis(redis);
    await redisServer.stop();
    tmp.cleanup();
  });

  it('when IVIS-core’s certificate is revoked then its open keep-alive connection, new connections and resumed sessions are refused', async () => {
    const keepAlive = agentFor(ivisCore, true);
    const fresh = agentFor(ivisCore, false);
    try {
      runId += 1;
      const accepted = await request(port, keepAlive, ca.caPem, 'POST', `/rps/run/${runId}`, runBody(runId));
      expect(accepted.status).toBe(200);
      const openSocket = accepted.socket;
      // A fresh connection before the revocation caches a TLS session to resume later.
      const before = await request(port, fresh, ca.caPem, 'GET', `/rps/run/${runId}`);
      expect(before.status).toBe(200);

      const revokedAt = Date.now();
      const info = await ca.revoke(ivisCore.info.serial, revocations);
      expect(info.revoked).toBe(true);
      expect(await redis.sismember(keys.revokedSerials(), ivisCore.info.decimalSerial)).toBe(1);

      const refused = await waitFor(
        'the gateway to refuse the revoked certificate on the open connection',
        async () => {
          const answer = await request(port, keepAlive, ca.caPem, 'GET', `/rps/run/${runId}`);
          expect(answer.socket).toBe(openSocket); // still the connection opened before the revocation
          return answer.status === 401 ? answer : null;
        },
        { timeoutMs: REVOCATION_BOUND_MS, intervalMs: 50 },
      );
      process.stdout.write(
        `revocation reached an open keep-alive connection after ${Date.now() - revokedAt} ms\n`,
      );
      expect(JSON.parse(refused.body)).toMatchObject({ code: 'certificate_revoked' });

      const resumed = await request(port, fresh, ca.caPem, 'GET', `/rps/run/${runId}`);
      expect(resumed.reused).toBe(true);
      expect(resumed.status).toBe(401);
      runId += 1;
      const submit = await request(
        port,
        agentFor(ivisCore, false),
        ca.caPem,
        'POST',
        `/rps/run/${runId}`,
        runBody(runId),
      );
      expect(submit.status).toBe(401);
      expect(await redis.exists(keys.run(runId))).toBe(0);
    } finally {
      keepAlive.destroy();
      fresh.destroy();
    }
  });

  it('when another allowed client is not revoked then it still submits', async () => {
    runId += 1;
    const answer = await request(
      port,
      agentFor(ivisCore2, false),
      ca.caPem,
      'POST',
      `/rps/run/${runId}`,
      runBody(runId),
    );
    expect(answer.status).toBe(200);
  });

  it('when a client certificate of the CA has expired then the handshake refuses it', async () => {
    const expired = await ca.issue({
      kind: 'client',
      commonName: 'ivis-core',
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      validityDays: 1,
    });
    expect(Date.parse(expired.info.notAfter)).toBeLessThan(Date.now());
    await expect(request(port, agentFor(expired, false), ca.caPem, 'GET', '/rps/run/1')).rejects.toThrow();
  });
});
