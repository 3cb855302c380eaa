import { createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PeerAdmin, RemoteRunState } from '@rps/common';
import {
  freePort,
  jobReachableTmpDir,
  startRedisServer,
  TEST_PYTHON,
  waitFor,
  type TestRedisServer,
} from '@rps/common/testing';
import { parse } from 'yaml';
import { openPool, TEST_JOB_USER, type Pool } from '../../peer-agent/test/support/agent-harness';
import {
  buildAgent,
  startAgentProcess,
  type AgentProcess,
} from '../../peer-agent/test/support/agent-process';
import { startFakeIvis, type FakeIvis } from '../../peer-agent/test/support/fake-ivis';
import { runBody } from '../../rps-gateway/test/e2e-processes';
import { pluck, startTestManager, type TestManager } from './support/manager-harness';

interface BundleFile {
  name: string;
  mode: string;
  content: string;
}

function writeBundle(dir: string, files: BundleFile[]): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of files) fs.writeFileSync(path.join(dir, f.name), f.content, { mode: parseInt(f.mode, 8) });
}

// A machine created through the API: registry, certificate, and a setup bundle that starts a working agent.
describe('remote-manager machines', () => {
  let server: TestRedisServer;
  let ivis: FakeIvis;
  let m: TestManager;
  let pool: Pool;
  let tmp: string;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    buildAgent();
    server = await startRedisServer();
    ivis = await startFakeIvis();
    pool = await openPool(server.url);
    m = await startTestManager(server.url, {
      prefix: pool.keys.prefix,
      bundle: {
        redisUrl: server.url,
        prefix: pool.keys.prefix,
        ivis: {
          trustedUrlBase: ivis.url,
          sandboxUrlBase: 'http://127.0.0.1:10330',
          es: { host: '127.0.0.1', port: 10328 },
        },
      },
      retentionMs: 0,
    });
    tmp = jobReachableTmpDir('rps-mgr-machines-');
  }, 120_000);
  afterAll(async () => {
    for (const a of agents) a.child.kill('SIGKILL');
    await Promise.all(agents.map((a) => a.exited));
    await m?.close();
    await pool?.close();
    await ivis?.close();
    await server?.stop();
  });

  it('when no CA exists then creating a machine is 409 ca_not_initialised and nothing is stored', async () => {
    const res = await m.api('POST', '/api/machines', { name: 'early', address: '10.0.0.9', type: 'manual' });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('ca_not_initialised');
    expect(await m.redis.exists(m.keys.machine('early'))).toBe(0);
    expect((await m.api('GET', '/api/certificates')).body.code).toBe('ca_not_initialised');
  });

  it('when the CA is initialised twice then the second is 409 ca_exists', async () => {
    const init = await m.api('POST', '/api/ca/init', { commonName: 'Test pool CA' });
    expect(init.status).toBe(201);
    expect(init.body.caPem).toContain('BEGIN CERTIFICATE');
    expect((await m.api('POST', '/api/ca/init', {})).body.code).toBe('ca_exists');
  });

  it('when a manual machine is created then it is in the registry, its certificate verifies with its SANs, and its bundle starts an agent that runs a job', async () => {
    const adminPort = await freePort();
    const res = await m.api('POST', '/api/machines', {
      name: 'Peer One',
      description: 'the first',
      address: '127.0.0.1',
      dnsname: 'peer-one.pool.test',
      type: 'manual',
      capacity: 1,
      parameters: {
        workDir: path.join(tmp, 'peer-one'),
        python: TEST_PYTHON,
        subtypes: { __default__: { libs: [] } },
        runAs: TEST_JOB_USER,
        allowSameUser: true,
        adminPort,
      },
    });
    expect(res.status).toBe(201);
    const machine = res.body.machine;
    expect(machine).toMatchObject({
      id: 'peer-one',
      name: 'Peer One',
      state: 'provisioned',
      peer: null,
      capacity: 1,
    });
    expect(await m.redis.hget(m.keys.machine('peer-one'), 'type')).toBe('manual');
    expect(await m.redis.zscore(m.keys.machines(), 'peer-one')).not.toBeNull();
    expect(pluck((await m.api('GET', '/api/machines')).body.machines, 'id')).toEqual(['peer-one']);

    const files = res.body.bundle.files as BundleFile[];
    expect(files.map((f) => [f.name, f.mode])).toEqual([
      ['agent.yaml', '0600'],
      ['svr.pem', '0644'],
      ['svr.key', '0600'],
      ['ca.cert', '0644'],
    ]);
    const byName = Object.fromEntries(files.map((f) => [f.name, f.content]));
    const cert = new X509Certificate(byName['svr.pem']!);
    const ca = new X509Certificate(byName['ca.cert']!);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(cert.subjectAltName).toContain('DNS:peer-one.pool.test');
    expect(cert.checkPrivateKey(createPrivateKey(byName['svr.key']!))).toBe(true);
    expect(machine.certificateSerial).toBe(BigInt(`0x${cert.serialNumber}`).toString(16));
    const listed = await m.api('GET', '/api/certificates');
    expect(pluck(listed.body.certificates, 'commonName')).toContain('peer-one');
    expect(JSON.stringify(listed.body)).not.toContain('PRIVATE KEY');
    const config = parse(byName['agent.yaml']!) as {
      agent: { id: string; executor: { kind: string } };
      redis: { prefix: string };
    };
    expect(config.agent).toMatchObject({
      id: 'peer-one',
      address: '127.0.0.1',
      capacity: 1,
      executor: { kind: 'builtin' },
    });
    expect(config.redis.prefix).toBe(pool.keys.prefix);

    const dir = path.join(tmp, 'bundle-peer-one');
    writeBundle(dir, files);
    expect(fs.statSync(path.join(dir, 'svr.key')).mode & 0o777).toBe(0o600);
    const agent = startAgentProcess(path.join(dir, 'agent.yaml'));
    agents.push(agent);
    await waitFor(
      'the machine to show its agent as an active peer',
      async () => (await m.api('GET', '/api/machines/peer-one')).body.machine.state === 'active',
      { timeoutMs: 60_000, intervalMs: 100 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${agent.logs()}`);
    });
    const shown = (await m.api('GET', '/api/machines/peer-one')).body.machine;
    expect(shown.peer).toMatchObject({ id: 'peer-one', state: 'active', capacity: 1 });
    expect(shown.lastHeartbeat).not.toBeNull();

    await pool.submit(4101, runBody(4101, 77, 'print("hello from the bundle")\n'));
    await waitFor(
      'the run to succeed on the bundle agent',
      async () => (await m.api('GET', '/api/runs/4101')).body.run?.state === 'succeeded',
      { timeoutMs: 120_000, intervalMs: 200 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${agent.logs()}`);
    });
    const detail = (await m.api('GET', '/api/runs/4101')).body;
    expect(detail.run.peerId).toBe('peer-one');
    expect(detail.outputTail).toContain('hello from the bundle');
    await waitFor('the final status push', () =>
      ivis.statuses(4101).some((s) => s.status.status === RemoteRunState.SUCCESS),
    );
  });

  it('when a machine name is taken then 409 machine_name_taken', async () => {
    const res = await m.api('POST', '/api/machines', {
      name: 'Peer One',
      address: '10.0.0.2',
      type: 'manual',
    });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('machine_name_taken');
  });

  it('when an rjr machine is created then its agent config hands runs to the job runner URL', async () => {
    const res = await m.api('POST', '/api/machines', {
      name: 'runner-2',
      address: '10.0.0.12',
      type: 'rjr',
      parameters: { url: 'http://10.0.0.12:8080' },
    });
    expect(res.status).toBe(201);
    const yaml = (res.body.bundle.files as BundleFile[]).find((f) => f.name === 'agent.yaml')!.content;
    expect((parse(yaml) as { agent: { executor: unknown } }).agent.executor).toEqual({
      kind: 'rjr',
      url: 'http://10.0.0.12:8080',
    });
    const again = await m.api('GET', '/api/machines/runner-2/bundle');
    expect(again.status).toBe(200);
    const newCert = new X509Certificate(
      (again.body.bundle.files as BundleFile[]).find((f) => f.name === 'svr.pem')!.content,
    );
    const oldSerial = (res.body.machine as { certificateSerial: string }).certificateSerial;
    expect(BigInt(`0x${newCert.serialNumber}`).toString(16)).not.toBe(oldSerial);
    const certificates = (await m.api('GET', '/api/certificates')).body.certificates as Array<{
      serial: string;
      revoked: boolean;
    }>;
    expect(certificates.find((c) => c.serial === oldSerial)?.revoked).toBe(true);
  });

  it('when a machine whose peer holds runs is removed then it drains first (202) and is removed once the runs are done', async () => {
    const created = await m.api('POST', '/api/machines', {
      name: 'busy',
      address: '10.0.0.20',
      type: 'manual',
    });
    expect(created.status).toBe(201);
    const now = Date.now();
    await m.redis.hset(m.keys.peer('busy'), {
      id: 'busy',
      address: '10.0.0.20',
      capacity: '2',
      executor: 'builtin',
      state: 'active',
      registeredAt: String(now),
      heartbeatAt: String(now),
    });
    await m.redis.zadd(m.keys.peers(), now, 'busy');
    await m.redis.sadd(m.keys.peerRuns('busy'), '9001');
    const res = await m.api('DELETE', '/api/machines/busy');
    expect(res.status).toBe(202);
    expect(res.body.machine.state).toBe('removing');
    const commands = await m.redis.xrange(m.keys.peerControl('busy'), '-', '+');
    expect(commands.map(([, fields]) => (JSON.parse(fields[1]!) as { kind: string }).kind)).toEqual([
      'drain',
    ]);
    expect(await m.redis.hget(m.keys.peer('busy'), 'state')).toBe('active');
    await m.redis.srem(m.keys.peerRuns('busy'), '9001');
    await waitFor(
      'the drained machine to be removed',
      async () => (await m.redis.hget(m.keys.peer('busy'), 'state')) === 'removed',
    );
    expect((await m.api('GET', '/api/machines/busy')).body.machine.state).toBe('removed');
  });

  it('when an idle machine is removed then its peer is removed at once, its certificate revoked and its records pruned after retention', async () => {
    const before = (await m.api('GET', '/api/machines/peer-one')).body.machine;
    const res = await m.api('DELETE', '/api/machines/peer-one');
    expect([200, 202]).toContain(res.status);
    await waitFor(
      'the machine to be removed',
      async () => (await m.api('GET', '/api/machines/peer-one')).body.machine?.state === 'removed',
      {
        timeoutMs: 60_000,
      },
    );
    const peers = await new PeerAdmin(m.redis, m.keys).list();
    expect(peers.find((p) => p.id === 'peer-one')?.state).toBe('removed');
    const decimal = BigInt(`0x${before.certificateSerial as string}`).toString(10);
    expect(await m.redis.sismember(m.keys.revokedSerials(), decimal)).toBe(1);
    // scheduler-sync's retention prunes the removed peer; the machine's record follows.
    await new PeerAdmin(m.redis, m.keys).prune('peer-one', Number.MAX_SAFE_INTEGER);
    await waitFor(
      'the machine record to be pruned',
      async () => (await m.redis.exists(m.keys.machine('peer-one'))) === 0,
      {
        timeoutMs: 30_000,
      },
    );
    expect((await m.api('GET', '/api/machines/peer-one')).body.code).toBe('machine_not_found');
    expect(await m.redis.hget(m.keys.machineNames(), 'Peer One')).toBeNull();
  });
});
