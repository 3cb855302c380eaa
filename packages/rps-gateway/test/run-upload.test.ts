import tls from 'node:tls';
import type { Redis } from 'ioredis';
import { RunStore, runJobId } from '@rps/common';
import {
  createTestPki,
  startRedisServer,
  waitFor,
  type TestPki,
  type TestRedisServer,
} from '@rps/common/testing';
import { GATEWAY_DEFAULTS } from '../src/gateway.constants';
import { RunSubmitStore } from '../src/stores/run-submit.store';
import {
  RunUploadStore,
  UPLOAD_TTL_MS,
  UPLOAD_WINDOW_BYTES,
  UPLOAD_WRITE_BYTES,
} from '../src/stores/run-upload.store';
import { call, runBody, startGateway, type TestGateway } from './gateway-harness';

/** A body well above the staging threshold: a ~400 kB archive as IVIS-core's JSON byte array. */
function bigBody(runId: number, overrides: Record<string, unknown> = {}): Buffer {
  const data = Array.from({ length: 400_000 }, (_, i) => (i * 2654435761) >>> 24);
  const raw = Buffer.from(
    JSON.stringify(runBody(runId, { codeArchive: { type: 'Buffer', data }, ...overrides })),
  );
  expect(raw.length).toBeGreaterThan(GATEWAY_DEFAULTS.stageBodiesAboveBytes);
  return raw;
}

/** The response of a raw POST, or null when the connection closed without one. */
interface RawAnswer {
  status: number;
  json: Record<string, unknown>;
}

/**
 * A POST written by hand on a TLS socket, so a test controls what goes out:
 * `content-length` as declared, the body in two parts with a pause between
 * (`between` runs there), and how it ends (`destroy`: the client vanishes).
 */
function rawPost(
  pki: TestPki,
  port: number,
  path: string,
  opts: {
    declared: number;
    first: Buffer;
    rest: Buffer;
    between?: () => Promise<unknown>;
    destroy?: boolean;
  },
): Promise<RawAnswer | null> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: pki.ca.cert, ...pki.client });
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    socket.on('error', () => undefined); // EPIPE/ECONNRESET once the gateway answered early
    socket.on('close', () => {
      const text = Buffer.concat(received).toString('utf8');
      const status = /^HTTP\/1\.1 (\d+)/.exec(text)?.[1];
      if (!status) return resolve(null);
      const headEnd = text.indexOf('\r\n\r\n');
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(text.slice(0, headEnd))?.[1] ?? 0);
      // Only the first answer: Node may add its own 400 for bytes past content-length.
      const body = text.slice(headEnd + 4, headEnd + 4 + length);
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(body) as Record<string, unknown>;
      } catch {
        // an empty 200
      }
      resolve({ status: Number(status), json });
    });
    socket.once('secureConnect', () => {
      const head =
        `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
        `content-length: ${opts.declared}\r\nconnection: close\r\n\r\n`;
      socket.write(head);
      socket.write(opts.first);
      void (async () => {
        await opts.between?.();
        if (opts.destroy) {
          socket.destroy();
          return;
        }
        // No end(): TLS has no half-close; the gateway closes once it answered (`connection: close`).
        if (!socket.destroyed) socket.write(opts.rest);
      })().catch(reject);
    });
  });
}

describe('POST /rps/run/:run_id with a large body (staged in Redis while it uploads)', () => {
  let redisServer: TestRedisServer;
  let pki: TestPki;
  let gw: TestGateway;
  let store: RunStore;

  beforeAll(async () => {
    pki = createTestPki();
    redisServer = await startRedisServer();
  });
  beforeEach(async () => {
    gw = await startGateway(redisServer.url, pki);
    store = new RunStore(gw.redis, gw.keys);
  });
  afterEach(async () => gw.close());
  afterAll(async () => {
    await redisServer.stop();
    pki.cleanup();
  });

  const stagingKeys = () => gw.redis.keys(gw.keys.runUpload('*'));
  const halves = (raw: Buffer) => [raw.subarray(0, raw.length >> 1), raw.subarray(raw.length >> 1)] as const;

  it('when a large valid body is posted then it is stored byte for byte, without a TTL, queued, and no staging is left', async () => {
    // Unusual spacing and key order: what a re-serialiser would change.
    const raw = Buffer.concat([Buffer.from('{ "futureField" : [1, 2] ,\n'), bigBody(70).subarray(1)]);
    const res = await call(pki, gw.port, '/rps/run/70', { method: 'POST', body: raw });
    expect(res.status).toBe(200);
    expect((await store.request(70))?.equals(raw)).toBe(true);
    expect(await gw.redis.pttl(gw.keys.runRequest(70))).toBe(-1);
    expect(await store.get(70)).toMatchObject({
      state: 'queued',
      execution: 1,
      taskId: 7,
      jobId: 5,
      pendingSince: '',
    });
    expect((await gw.runsQueue.getJob(runJobId(70, 1)))?.data).toEqual({ runId: 70, execution: 1 });
    expect(await stagingKeys()).toEqual([]);
  });

  it('when the upload is under way then its staging key carries the TTL that cleans up after a killed gateway', async () => {
    const [first, rest] = halves(bigBody(71));
    let ttl = 0;
    const answer = await rawPost(pki, gw.port, '/rps/run/71', {
      declared: first.length + rest.length,
      first,
      rest,
      between: async () => {
        const key = await waitFor('the staging key', async () => (await stagingKeys())[0]);
        ttl = await gw.redis.pttl(key);
      },
    });
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(answer?.status).toBe(200);
    expect(await stagingKeys()).toEqual([]);
  });

  it('when the same large POST is retried then it answers 200 once more, keeps the first body and leaves no staging', async () => {
    const raw = bigBody(72);
    expect((await call(pki, gw.port, '/rps/run/72', { method: 'POST', body: raw })).status).toBe(200);
    const again = bigBody(72, { params: { again: true } });
    expect((await call(pki, gw.port, '/rps/run/72', { method: 'POST', body: again })).status).toBe(200);
    expect((await store.request(72))?.equals(raw)).toBe(true);
    expect((await store.get(72))?.execution).toBe(1);
    expect(await stagingKeys()).toEqual([]);
  });

  it('when the client vanishes mid-upload then nothing is recorded and the staging key is deleted', async () => {
    const [first, rest] = halves(bigBody(73));
    const answer = await rawPost(pki, gw.port, '/rps/run/73', {
      declared: first.length + rest.length,
      first,
      rest,
      between: () => waitFor('the staging key', async () => (await stagingKeys()).length > 0),
      destroy: true,
    });
    expect(answer).toBeNull();
    await waitFor('no staging key', async () => (await stagingKeys()).length === 0);
    expect(await store.get(73)).toBeNull();
  });

  it('when content-length declares more than is sent then the upload never completes, and once the client gives up nothing is left', async () => {
    const raw = bigBody(74);
    const answer = await rawPost(pki, gw.port, '/rps/run/74', {
      declared: raw.length + 1000,
      first: raw,
      rest: Buffer.alloc(0),
      between: () => waitFor('the staging key', async () => (await stagingKeys()).length > 0),
      destroy: true,
    });
    expect(answer).toBeNull();
    await waitFor('no staging key', async () => (await stagingKeys()).length === 0);
    expect(await store.get(74)).toBeNull();
  });

  it('when content-length declares less than the body then the cut body is a 400 invalid_json as from the reference, and nothing is left', async () => {
    const raw = bigBody(75);
    const declared = raw.length - 10;
    const answer = await rawPost(pki, gw.port, '/rps/run/75', {
      declared,
      first: raw.subarray(0, declared),
      rest: Buffer.alloc(0),
    });
    expect(answer).toMatchObject({ status: 400, json: { code: 'invalid_json' } });
    await waitFor('no staging key', async () => (await stagingKeys()).length === 0);
    expect(await store.get(75)).toBeNull();
  });

  it('when a large body is invalid then it answers the same 400 as a small one, and nothing is left', async () => {
    const small = await call(pki, gw.port, '/rps/run/76', {
      method: 'POST',
      body: JSON.stringify(runBody(76, { taskId: 'seven' })),
    });
    const big = await call(pki, gw.port, '/rps/run/76', {
      method: 'POST',
      body: bigBody(76, { taskId: 'seven' }),
    });
    expect(small.status).toBe(400);
    expect(big.status).toBe(400);
    expect(big.json()).toEqual(small.json());
    expect(await stagingKeys()).toEqual([]);
    expect(await store.get(76)).toBeNull();
  });

  it('when a large body is valid but unusual for the one-pass validator then the reference accepts it and it is stored byte for byte', async () => {
    // An escaped key: the validator leaves it to the reference parser, which reads the staged body back.
    const raw = Buffer.concat([Buffer.from('{"\\u0070arams2":1,'), bigBody(77).subarray(1)]);
    const res = await call(pki, gw.port, '/rps/run/77', { method: 'POST', body: raw });
    expect(res.status).toBe(200);
    expect((await store.request(77))?.equals(raw)).toBe(true);
    expect(await stagingKeys()).toEqual([]);
  });
});

describe('the submit of a staged body (run-submit-staged-15.lua)', () => {
  let redisServer: TestRedisServer;
  let pki: TestPki;
  let gw: TestGateway;

  beforeAll(async () => {
    pki = createTestPki();
    redisServer = await startRedisServer();
    gw = await startGateway(redisServer.url, pki);
  });
  afterAll(async () => {
    await gw.close();
    await redisServer.stop();
    pki.cleanup();
  });

  const meta = { taskId: 7, jobId: 5 };
  const staged = (id: string, length: number) => ({
    stagedKey: gw.keys.runUpload(id),
    sealKey: gw.keys.runUploadSealed(id),
    length,
  });

  it('when chunks come faster than Redis answers then the upload asks to pause at its window, resumes on drain, and stages the exact bytes', async () => {
    const uploads = new RunUploadStore(() => gw.redis.duplicate(), gw.keys);
    try {
      const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(64 * 1024, i));
      const body = Buffer.concat(chunks);
      const upload = uploads.begin(body.length);
      let drained = 0;
      upload.onDrain = () => void drained++;
      // Written in one go: no answer can arrive in between, so the window fills.
      const verdicts = chunks.map((c) => upload.write(c));
      const firstPause = verdicts.indexOf(false);
      expect(firstPause).toBeGreaterThan(0);
      expect(firstPause * 64 * 1024).toBeLessThanOrEqual(UPLOAD_WINDOW_BYTES + 128 * 1024);
      const staged = await upload.end();
      expect(drained).toBeGreaterThan(0);
      expect((await gw.redis.getBuffer(staged.stagedKey))?.equals(body)).toBe(true);
      expect(await gw.redis.get(staged.sealKey)).toBe(String(body.length));
      expect(await gw.redis.pttl(staged.stagedKey)).toBeLessThanOrEqual(UPLOAD_TTL_MS);
      upload.discard();
      await waitFor(
        'staging deleted',
        async () => (await gw.redis.exists(staged.stagedKey, staged.sealKey)) === 0,
      );
    } finally {
      await uploads.close(async (r) => void (await r.quit()));
    }
  });

  /** Resolves once Redis holds a command of client `id` for a `CLIENT PAUSE` (CLIENT LIST flag `b`). */
  const heldByPause = (admin: Redis, id: number) =>
    waitFor("the upload's writes held by the pause", async () =>
      String(await admin.call('CLIENT', 'LIST', 'ID', String(id))).includes(' flags=b '),
    );

  /** Bytes that differ from one body to the next and within one (a wrong frame shows). */
  const pattern = (length: number, seed: number) =>
    Buffer.from(Array.from({ length }, (_, i) => (i * 2654435761 + seed * 40503) >>> 24));

  it('when Redis has not answered its writes yet then no frame is reused, and an upload into the reused frames leaves the first body intact', async () => {
    const uploads = new RunUploadStore(() => gw.redis.duplicate(), gw.keys);
    const admin = gw.redis.duplicate();
    try {
      const first = pattern(3 * UPLOAD_WRITE_BYTES + 1000, 1);
      const uploadClient = await uploads.connection().client('ID');
      const a = uploads.begin(first.length);
      await admin.call('CLIENT', 'PAUSE', '10000', 'WRITE');
      a.write(first.subarray(0, 100)); // odd sizes: chunks span frames
      a.write(first.subarray(100));
      const ended = a.end();
      await heldByPause(admin, uploadClient);
      expect(uploads.pooledFrames()).toBe(0);
      await admin.call('CLIENT', 'UNPAUSE');
      const stagedA = await ended;
      expect(uploads.pooledFrames()).toBe(4); // three sent and answered, and the last, part-filled
      const second = pattern(first.length, 2);
      const b = uploads.begin(second.length);
      b.write(second);
      const stagedB = await b.end();
      expect((await gw.redis.getBuffer(stagedA.stagedKey))?.equals(first)).toBe(true);
      expect((await gw.redis.getBuffer(stagedB.stagedKey))?.equals(second)).toBe(true);
      a.discard();
      b.discard();
    } finally {
      await admin.call('CLIENT', 'UNPAUSE');
      admin.disconnect();
      await uploads.close(async (r) => void (await r.quit()));
    }
  });

  it('when a write fails then its frame is dropped, not pooled, since the socket may still hold it', async () => {
    const uploads = new RunUploadStore(() => gw.redis.duplicate(), gw.keys);
    const admin = gw.redis.duplicate();
    try {
      const body = pattern(3 * UPLOAD_WRITE_BYTES, 3);
      const uploadClient = await uploads.connection().client('ID');
      const upload = uploads.begin(body.length);
      await admin.call('CLIENT', 'PAUSE', '10000', 'WRITE');
      upload.write(body);
      const ended = upload.end();
      await heldByPause(admin, uploadClient);
      uploads.connection().disconnect();
      await expect(ended).rejects.toThrow();
      expect(uploads.pooledFrames()).toBe(0);
    } finally {
      await admin.call('CLIENT', 'UNPAUSE');
      admin.disconnect();
      await uploads.close(async () => undefined);
    }
  });

  it('when the staged body has no seal (a restart lost its last writes) then the submit answers 503 and writes nothing', async () => {
    const submits = new RunSubmitStore(gw.redis, gw.keys, gw.runsQueue);
    await gw.redis.set(gw.keys.runUpload('u1'), 'abcd');
    await expect(submits.submitAndEnqueue(90, staged('u1', 4), meta)).rejects.toMatchObject({
      status: 503,
      code: 'redis_unavailable',
    });
    expect(await gw.redis.exists(gw.keys.run(90), gw.keys.runRequest(90))).toBe(0);
    expect(await gw.runsQueue.getJob(runJobId(90, 1))).toBeUndefined();
  });

  it('when the seal names another length then the submit answers 503 and writes nothing', async () => {
    const submits = new RunSubmitStore(gw.redis, gw.keys, gw.runsQueue);
    await gw.redis.set(gw.keys.runUpload('u2'), 'abcd');
    await gw.redis.set(gw.keys.runUploadSealed('u2'), '5');
    await expect(submits.submitAndEnqueue(91, staged('u2', 5), meta)).rejects.toMatchObject({ status: 503 });
    expect(await gw.redis.exists(gw.keys.run(91), gw.keys.runRequest(91))).toBe(0);
  });

  it('when a sealed body is submitted then it is renamed into place without a TTL and both staging keys are gone', async () => {
    const submits = new RunSubmitStore(gw.redis, gw.keys, gw.runsQueue);
    await gw.redis.set(gw.keys.runUpload('u3'), 'abcd', 'PX', 60_000);
    await gw.redis.set(gw.keys.runUploadSealed('u3'), '4', 'PX', 60_000);
    expect(await submits.submitAndEnqueue(92, staged('u3', 4), meta)).toMatchObject({
      outcome: 'created',
      execution: 1,
    });
    expect(await gw.redis.get(gw.keys.runRequest(92))).toBe('abcd');
    expect(await gw.redis.pttl(gw.keys.runRequest(92))).toBe(-1);
    expect(await gw.redis.exists(gw.keys.runUpload('u3'), gw.keys.runUploadSealed('u3'))).toBe(0);
  });

  it('when the run is live and the staged body is gone (a retry after a lost reply) then it answers existing and keeps the stored body', async () => {
    const submits = new RunSubmitStore(gw.redis, gw.keys, gw.runsQueue);
    await gw.redis.set(gw.keys.runUpload('u4'), 'abcd');
    await gw.redis.set(gw.keys.runUploadSealed('u4'), '4');
    await submits.submitAndEnqueue(93, staged('u4', 4), meta);
    expect(await submits.submitAndEnqueue(93, staged('u4', 4), meta)).toMatchObject({
      outcome: 'existing',
      execution: 1,
    });
    expect(await gw.redis.get(gw.keys.runRequest(93))).toBe('abcd');
  });
});

describe('a large upload while Redis fails', () => {
  let pki: TestPki;

  beforeAll(() => {
    pki = createTestPki();
  });
  afterAll(() => pki.cleanup());

  it('when Redis dies mid-upload then the POST answers 503 redis_unavailable, and after the restart no staging and no run is left', async () => {
    const server = await startRedisServer({ appendonly: true });
    let gw: TestGateway | undefined;
    try {
      gw = await startGateway(server.url, pki);
      const g = gw;
      const [first, rest] = halves(bigBody(80));
      const answer = await rawPost(pki, g.port, '/rps/run/80', {
        declared: first.length + rest.length,
        first,
        rest,
        between: async () => {
          await waitFor(
            'the staging key',
            async () => (await g.redis.keys(g.keys.runUpload('*'))).length > 0,
          );
          await server.kill();
        },
      });
      expect(answer).toMatchObject({
        status: 503,
        json: { code: 'redis_unavailable', details: [{ path: 'redis', message: 'connection' }] },
      });
      await server.restart();
      // The AOF may keep the part written before the kill: its TTL runs on; the gateway deletes it once it can.
      await waitFor('a POST accepted after the restart', async () => {
        const res = await call(pki, g.port, '/rps/run/81', {
          method: 'POST',
          body: JSON.stringify(runBody(81)),
        });
        return res.status === 200;
      });
      expect(await new RunStore(g.redis, g.keys).get(80)).toBeNull();
      for (const key of await g.redis.keys(g.keys.runUpload('*'))) {
        expect(await g.redis.pttl(key)).toBeGreaterThan(0);
      }
    } finally {
      await gw?.close();
      await server.stop();
    }
  });

  it('when Redis reaches maxmemory during the upload then the POST answers 503 naming memory and no staging is left', async () => {
    const server = await startRedisServer();
    let gw: TestGateway | undefined;
    try {
      gw = await startGateway(server.url, pki);
      const g = gw;
      const raw = bigBody(82);
      // Room for less than the body: the string created at full length takes
      // Redis over the limit, and the writes after it are refused.
      const used = Number(/used_memory:(\d+)/.exec(await g.redis.info('memory'))?.[1]);
      await g.redis.config('SET', 'maxmemory-policy', 'noeviction');
      await g.redis.config('SET', 'maxmemory', String(used + Math.floor(raw.length / 2)));
      const res = await call(pki, g.port, '/rps/run/82', { method: 'POST', body: raw });
      expect(res.status).toBe(503);
      expect(res.json()).toMatchObject({
        code: 'redis_unavailable',
        details: [{ path: 'redis', message: 'memory' }],
      });
      await waitFor('no staging key', async () => (await g.redis.keys(g.keys.runUpload('*'))).length === 0);
      expect(await new RunStore(g.redis, g.keys).get(82)).toBeNull();
      await g.redis.config('SET', 'maxmemory', '0');
      expect((await call(pki, g.port, '/rps/run/82', { method: 'POST', body: raw })).status).toBe(200);
    } finally {
      await gw?.close();
      await server.stop();
    }
  });

  function halves(raw: Buffer) {
    return [raw.subarray(0, raw.length >> 1), raw.subarray(raw.length >> 1)] as const;
  }
});
