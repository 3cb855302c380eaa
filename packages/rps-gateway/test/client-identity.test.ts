import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import { clientIdentitySchema, decimalSerial, type KeyPairPem } from '@rps/common';
import {
  createTestPki,
  fingerprint256,
  startRedisServer,
  waitFor,
  type TestPki,
  type TestRedisServer,
} from '@rps/common/testing';
import { call, captureLogger, runBody, startGateway, type TestGateway } from './gateway-harness';

// Who gets in at the public port, with real certificates: the handshake
// refuses what TLS can judge (chain, validity, purpose), the guard what it
// cannot (revoked serials, certificates of the CA that are not IVIS-core's).

const DAY = 86_400_000;

/** The allow-list is re-read every 500 ms; the bound leaves room for a request on a loaded 2-core machine. */
const RUNTIME_CHANGE_BOUND_MS = 3000;

describe('client certificates at the gateway', () => {
  let redisServer: TestRedisServer;
  let pki: TestPki;
  let gw: TestGateway;
  let logs: Array<Record<string, unknown>>;
  let executor: KeyPairPem;
  let runId = 100;

  const submit = (client: KeyPairPem | null, agent?: https.Agent) => {
    runId += 1;
    return call(pki, gw.port, `/rps/run/${runId}`, {
      method: 'POST',
      body: JSON.stringify(runBody(runId)),
      client,
      ...(agent ? { agent } : {}),
    });
  };

  beforeAll(async () => {
    pki = createTestPki();
    // IVIS-core's CA signs every executor's certificate too (ivis-protocol.md 4.3).
    executor = pki.issue('IVIS-Executor');
    redisServer = await startRedisServer();
    const captured = captureLogger();
    logs = captured.lines;
    gw = await startGateway(redisServer.url, pki, { logger: captured.logger });
  });
  afterAll(async () => {
    await gw.close();
    await redisServer.stop();
    pki.cleanup();
  });

  describe('refused in the handshake', () => {
    it.each<[string, () => KeyPairPem | null]>([
      ['no certificate', () => null],
      ['a certificate of a foreign CA', () => pki.foreignClient],
      ['an expired certificate', () => pki.expiredClient],
      [
        'a certificate not valid yet',
        () => pki.issue('ivis-core', 30, { notBefore: new Date(Date.now() + DAY) }),
      ],
      [
        'a certificate for serverAuth only (no clientAuth in its extended key usage)',
        () => pki.issue('ivis-core', 30, { extKeyUsage: { serverAuth: true } }),
      ],
    ])('when the client presents %s then no request reaches the gateway', async (_label, client) => {
      const before = runId;
      await expect(submit(client())).rejects.toThrow();
      expect(await gw.redis.exists(gw.keys.run(before + 1))).toBe(0);
    });
  });

  it('when IVIS-core’s listed certificate is presented then the run is accepted and its name is in the request log', async () => {
    const res = await submit(pki.client);
    expect(res.status).toBe(200);
    expect(await gw.redis.exists(gw.keys.run(runId))).toBe(1);
    await waitFor('the request-done line', () =>
      logs.find((l) => l.msg === 'request done' && l.path === `/rps/run/${runId}`),
    );
    expect(logs.find((l) => l.msg === 'request done' && l.path === `/rps/run/${runId}`)).toMatchObject({
      client: 'ivis-core',
      status: 200,
    });
  });

  it('when an executor’s certificate of the same CA is presented then it is a 403 JSON, a warn line and no run', async () => {
    const res = await submit(executor);
    expect(res.status).toBe(403);
    expect(res.json()).toMatchObject({ code: 'client_not_allowed' });
    expect(await gw.redis.exists(gw.keys.run(runId))).toBe(0);
    const cert = new X509Certificate(executor.cert);
    const warn = logs.find((l) => l.msg === 'client certificate not allowed');
    expect(warn).toMatchObject({
      level: 40,
      client: {
        subject: 'CN=IVIS-Executor',
        serial: decimalSerial(cert),
        fingerprint256: cert.fingerprint256,
        issuer: expect.stringContaining('CN=IVIS-core CA'),
      },
    });
    expect(JSON.stringify(logs)).not.toContain('PRIVATE KEY');
  });

  it('when a listed certificate’s serial is revoked then it is a 401, not a pass', async () => {
    await gw.redis.sadd(gw.keys.revokedSerials(), decimalSerial(new X509Certificate(pki.client.cert)));
    try {
      const res = await submit(pki.client);
      expect(res.status).toBe(401);
      expect(res.json()).toMatchObject({ code: 'certificate_revoked' });
    } finally {
      await gw.redis.del(gw.keys.revokedSerials());
    }
  });

  it('when a client is added to and removed from the Redis list then each takes effect without a restart, also on an open connection', async () => {
    const fingerprint = fingerprint256(executor).toLowerCase();
    expect((await submit(executor)).status).toBe(403);
    const added = Date.now();
    await gw.redis.hset(
      gw.keys.gatewayClients(),
      'executor-7',
      JSON.stringify({ fingerprint256: fingerprint }),
    );
    await waitFor('the added client to get in', async () => (await submit(executor)).status === 200, {
      timeoutMs: RUNTIME_CHANGE_BOUND_MS,
    });
    const addMs = Date.now() - added;
    const keepAlive = new https.Agent({ keepAlive: true, maxSockets: 1, ca: pki.ca.cert, ...executor });
    try {
      expect((await submit(executor, keepAlive)).status).toBe(200);
      const removed = Date.now();
      await gw.redis.hdel(gw.keys.gatewayClients(), 'executor-7');
      await waitFor(
        'the removal to reach the open connection',
        async () => {
          const res = await submit(executor, keepAlive);
          return res.status === 403;
        },
        { timeoutMs: RUNTIME_CHANGE_BOUND_MS },
      );
      process.stdout.write(
        `allow-list change took effect after ${addMs} ms (add), ${Date.now() - removed} ms (remove)\n`,
      );
    } finally {
      keepAlive.destroy();
    }
    expect(logs).toContainEqual(expect.objectContaining({ msg: 'allowed clients loaded', runtime: [] }));
  });

  it('when the Redis list holds a malformed entry then it is ignored with a warn line and the others still count', async () => {
    await gw.redis.hset(gw.keys.gatewayClients(), {
      broken: '{"fingerprint256":"AB:CD"}',
      'executor-8': JSON.stringify({ fingerprint256: fingerprint256(executor) }),
    });
    try {
      await waitFor('the valid entry to count', async () => (await submit(executor)).status === 200, {
        timeoutMs: RUNTIME_CHANGE_BOUND_MS,
      });
      expect(logs).toContainEqual(
        expect.objectContaining({ msg: 'allowed client entry ignored', client: 'broken', level: 40 }),
      );
    } finally {
      await gw.redis.del(gw.keys.gatewayClients());
    }
  });

  describe('other ways to name and admit clients', () => {
    let other: TestGateway;
    afterEach(async () => other?.close());

    it('when IVIS-core is listed by serial and issuer (as openssl prints them) then it gets in and an executor does not', async () => {
      const cert = new X509Certificate(pki.client.cert);
      const identity = clientIdentitySchema.parse({
        name: 'ivis-core-by-serial',
        serial: `0x${cert.serialNumber}`,
        issuer: 'O = IVIS-core, OU = IVIS-core CA, CN = IVIS-core CA',
      });
      const captured = captureLogger();
      other = await startGateway(redisServer.url, pki, { clients: [identity], logger: captured.logger });
      const ok = await call(pki, other.port, '/rps/run/7', {
        method: 'POST',
        body: JSON.stringify(runBody(7)),
      });
      expect(ok.status).toBe(200);
      await waitFor('the request-done line', () =>
        captured.lines.find((l) => l.msg === 'request done' && l.client === 'ivis-core-by-serial'),
      );
      const refused = await call(pki, other.port, '/rps/run/8', {
        method: 'POST',
        body: JSON.stringify(runBody(8)),
        client: executor,
      });
      expect(refused.status).toBe(403);
    });

    it('when allowAnyClientOfCa is set then any certificate of the CA gets in, with its subject in the log', async () => {
      const captured = captureLogger();
      other = await startGateway(redisServer.url, pki, {
        clients: [],
        allowAnyClientOfCa: true,
        logger: captured.logger,
      });
      const res = await call(pki, other.port, '/rps/run/9', { client: executor });
      expect(res.status).toBe(404);
      await waitFor('the request-done line', () => captured.lines.find((l) => l.msg === 'request done'));
      expect(captured.lines.find((l) => l.msg === 'request done')).toMatchObject({
        client: null,
        clientSubject: 'CN=IVIS-Executor',
      });
    });
  });
});
