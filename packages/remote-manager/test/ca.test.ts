import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '@rps/common';
import { LocalCa, type RevocationWriter } from '../src/ca/local-ca';
import { ivisStyleCa, mutualTls, opensslText, opensslVerifies, tempDir } from './ca-fixtures';

// The local CA on real files: what it writes (and with which modes), what
// OpenSSL and Node's TLS make of its certificates, and IVIS-core's X.509 v1 CA
// taken over as it is.

const DAY = 86_400_000;
const mode = (file: string) => fs.statSync(file).mode & 0o777;

/** A RevocationWriter that records what it was given (the Redis-backed one has its own test). */
function recordingWriter(): RevocationWriter & { serials: string[] } {
  const serials: string[] = [];
  return { serials, revoke: async (s) => void serials.push(s) };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof AppError) return err.code;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('LocalCa made by init', () => {
  let tmp: ReturnType<typeof tempDir>;
  let dir: string;
  let ca: LocalCa;

  beforeAll(async () => {
    tmp = tempDir('ca');
    dir = path.join(tmp.dir, 'ca');
    ca = await LocalCa.init(dir, { commonName: 'Test pool CA', keyBits: 2048 });
  });
  afterAll(() => tmp.cleanup());

  it('when initialised then the folder is 0700, the key 0600, and the CA has CA extensions', () => {
    expect(mode(dir)).toBe(0o700);
    expect(mode(path.join(dir, 'ca.key'))).toBe(0o600);
    expect(mode(path.join(dir, 'ca.cert'))).toBe(0o644);
    const cert = new X509Certificate(ca.caPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toContain('CN=Test pool CA');
    const text = opensslText(ca.caPem);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(text).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(text).toContain('X509v3 Subject Key Identifier');
    expect(ca.caInfo).toMatchObject({ kind: 'ca', commonName: 'Test pool CA', revoked: false });
  });

  it('when init runs again on the same folder then it is refused with ca_exists', async () => {
    expect(await codeOf(LocalCa.init(dir, { keyBits: 2048 }))).toBe('ca_exists');
  });

  it('when an empty folder is opened then it is ca_not_initialised', async () => {
    expect(await codeOf(LocalCa.open(path.join(tmp.dir, 'nothing-here')))).toBe('ca_not_initialised');
  });

  it('when a server certificate is issued then it verifies against the CA with its SANs, extensions and a 0600 key', async () => {
    const issued = await ca.issue({
      kind: 'server',
      commonName: 'peer-1',
      ips: ['127.0.0.1', '::1'],
      dnsNames: ['peer-1.pool.test'],
    });
    const cert = new X509Certificate(issued.certPem);
    const caCert = new X509Certificate(ca.caPem);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkIP('::1')).toBeDefined();
    expect(cert.checkIP('10.0.0.1')).toBeUndefined();
    expect(cert.checkHost('peer-1.pool.test')).toBe('peer-1.pool.test');
    expect(cert.checkHost('other.pool.test')).toBeUndefined();
    expect(cert.keyUsage?.sort()).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(opensslVerifies(tmp.dir, ca.caPem, issued.certPem, 'sslserver')).toBe(true);
    const text = opensslText(issued.certPem);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment/);
    // The AKI names the CA's SKI, so chain builders find the issuer by key.
    const caSki = /Subject Key Identifier:\s+([0-9A-F:]+)/.exec(opensslText(ca.caPem))?.[1];
    expect(caSki).toBeDefined();
    expect(text).toMatch(new RegExp(`Authority Key Identifier:\\s+(keyid:)?${caSki}`));
    expect(issued.info).toMatchObject({
      kind: 'server',
      commonName: 'peer-1',
      ips: ['127.0.0.1', '::1'],
      dnsNames: ['peer-1.pool.test'],
      fingerprint256: cert.fingerprint256,
      decimalSerial: BigInt(`0x${cert.serialNumber}`).toString(10),
    });
    expect(issued.caPem).toBe(ca.caPem);
    expect(mode(path.join(dir, 'issued', `${issued.info.serial}.key`))).toBe(0o600);
    expect(mode(path.join(dir, 'issued'))).toBe(0o700);
  });

  it('when certificates are issued then their serials are distinct, positive and at least 64 bits, and validity follows the request', async () => {
    const issued = await Promise.all(
      [1, 2, 3, 4, 5].map((n) => ca.issue({ kind: 'client', commonName: `client-${n}`, validityDays: n })),
    );
    const serials = issued.map((i) => BigInt(`0x${i.info.serial}`));
    expect(new Set(serials).size).toBe(5);
    for (const serial of serials) expect(serial > 2n ** 64n).toBe(true);
    for (const [n, i] of issued.entries()) {
      const span = Date.parse(i.info.notAfter) - Date.parse(i.info.notBefore);
      expect(span).toBe((n + 1) * DAY);
      expect(new X509Certificate(i.certPem).keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']); // clientAuth only
      expect(opensslVerifies(tmp.dir, ca.caPem, i.certPem, 'sslclient')).toBe(true);
      expect(opensslVerifies(tmp.dir, ca.caPem, i.certPem, 'sslserver')).toBe(false);
    }
    const defaults = await ca.issue({ kind: 'client', commonName: 'default-validity' });
    expect(Date.parse(defaults.info.notAfter) - Date.parse(defaults.info.notBefore)).toBe(365 * DAY);
  });

  it('when a request is malformed then it is refused before anything is written', async () => {
    const before = (await ca.list()).length;
    await expect(ca.issue({ kind: 'server', commonName: 'no-sans' })).rejects.toThrow(
      /at least one IP address or DNS name/,
    );
    await expect(ca.issue({ kind: 'client', commonName: 'x', ips: ['300.1.1.1'] })).rejects.toThrow(
      /IPv4 or IPv6/,
    );
    await expect(ca.issue({ kind: 'client', commonName: 'x', validityDays: 0 })).rejects.toThrow();
    expect((await ca.list()).length).toBe(before);
  });

  it('when the issued certificates are used for TLS then a client of the CA is accepted and a client of another CA refused', async () => {
    const server = await ca.issue({
      kind: 'server',
      commonName: 'gateway',
      ips: ['127.0.0.1'],
      dnsNames: ['localhost'],
    });
    const client = await ca.issue({ kind: 'client', commonName: 'ivis-core' });
    const other = await LocalCa.init(path.join(tmp.dir, 'other-ca'), { keyBits: 2048 });
    const stranger = await other.issue({ kind: 'client', commonName: 'ivis-core' });
    const base = { caPem: ca.caPem, server: server };
    expect(await mutualTls({ ...base, client })).toEqual({ ok: true, clientCn: 'ivis-core' });
    expect(await mutualTls({ ...base, client, host: 'localhost', servername: 'localhost' })).toMatchObject({
      ok: true,
    });
    expect((await mutualTls({ ...base, client: stranger })).ok).toBe(false);
  });

  it('when listed, got or read from the index then no key material is there', async () => {
    const issued = await ca.issue({ kind: 'client', commonName: 'secret-holder' });
    const keyBody = issued.keyPem.split('\n')[1]!;
    const listed = JSON.stringify(await ca.list());
    expect(listed).not.toContain('PRIVATE KEY');
    expect(listed).not.toContain(keyBody);
    expect(listed).not.toMatch(/hasKey|keyPem/);
    expect(JSON.stringify(await ca.get(issued.info.serial))).not.toContain('PRIVATE KEY');
    const index = fs.readFileSync(path.join(dir, 'index.json'), 'utf8');
    expect(index).not.toContain('PRIVATE KEY');
    expect(index).not.toContain(keyBody);
    expect(await ca.get(issued.info.decimalSerial)).toEqual(issued.info);
  });

  it('when a certificate is revoked twice then the writer gets its decimal serial and the first revocation stands', async () => {
    const issued = await ca.issue({ kind: 'client', commonName: 'to-revoke' });
    const writer = recordingWriter();
    const first = await ca.revoke(issued.info.serial, writer);
    expect(first).toMatchObject({ serial: issued.info.serial, revoked: true });
    expect(first.revokedAt).not.toBeNull();
    const again = await ca.revoke(issued.info.decimalSerial, writer);
    expect(again).toEqual(first);
    expect(writer.serials).toEqual([issued.info.decimalSerial, issued.info.decimalSerial]);
    const reopened = await LocalCa.open(dir);
    expect(await reopened.get(issued.info.serial)).toEqual(first);
  });

  it('when an unknown serial or the CA itself is revoked then it is certificate_not_found or certificate_not_revocable', async () => {
    const writer = recordingWriter();
    expect(await codeOf(ca.revoke('abcdef0123', writer))).toBe('certificate_not_found');
    expect(await codeOf(ca.revoke(ca.caInfo.serial, writer))).toBe('certificate_not_revocable');
    expect(writer.serials).toEqual([]);
  });

  it('when a writer fails then the certificate is not marked revoked', async () => {
    const issued = await ca.issue({ kind: 'client', commonName: 'redis-down' });
    const failing: RevocationWriter = { revoke: () => Promise.reject(new Error('connection refused')) };
    await expect(ca.revoke(issued.info.serial, failing)).rejects.toThrow('connection refused');
    expect((await ca.get(issued.info.serial))?.revoked).toBe(false);
  });

  it('when the index is rewritten then no temporary file is left behind', () => {
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(fs.readdirSync(path.join(dir, 'issued')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('LocalCa importing IVIS-core’s CA', () => {
  let tmp: ReturnType<typeof tempDir>;
  let ivis: ReturnType<typeof ivisStyleCa>;

  beforeAll(() => {
    tmp = tempDir('ca-import');
    ivis = ivisStyleCa(tmp.dir);
  });
  afterAll(() => tmp.cleanup());

  it('when IVIS-core’s X.509 v1 CA is imported then it issues certificates that verify and work for TLS', async () => {
    expect(opensslText(ivis.certPem)).toContain('Version: 1 (0x0)');
    const dir = path.join(tmp.dir, 'imported');
    const ca = await LocalCa.import(dir, { caCertPem: ivis.certPem, caKeyPem: ivis.keyPem });
    expect(mode(path.join(dir, 'ca.key'))).toBe(0o600);
    expect(ca.caInfo).toMatchObject({
      kind: 'imported',
      subject: 'O=IVIS-core, OU=IVIS-core CA, CN=IVIS-core CA',
    });
    const server = await ca.issue({ kind: 'server', commonName: 'IVIS-Executor', ips: ['127.0.0.1'] });
    const client = await ca.issue({ kind: 'client', commonName: 'ivis-core' });
    expect(opensslVerifies(tmp.dir, ivis.certPem, server.certPem, 'sslserver')).toBe(true);
    expect(opensslVerifies(tmp.dir, ivis.certPem, client.certPem, 'sslclient')).toBe(true);
    expect(new X509Certificate(server.certPem).issuer).toBe(new X509Certificate(ivis.certPem).subject);
    expect(await mutualTls({ caPem: ivis.certPem, server, client })).toEqual({
      ok: true,
      clientCn: 'ivis-core',
    });
    // The CA is reopened from the files alone (manager restart).
    const reopened = await LocalCa.open(dir);
    expect((await reopened.list()).map((c) => c.kind)).toEqual(['imported', 'server', 'client']);
  });

  it('when IVIS-core’s files are copied in by hand (ca.cert, ca.key, no index) then open adopts them', async () => {
    const dir = path.join(tmp.dir, 'by-hand');
    fs.mkdirSync(dir);
    fs.copyFileSync(ivis.certFile, path.join(dir, 'ca.cert'));
    fs.copyFileSync(ivis.keyFile, path.join(dir, 'ca.key'));
    fs.chmodSync(path.join(dir, 'ca.key'), 0o644);
    const ca = await LocalCa.open(dir);
    expect(mode(path.join(dir, 'ca.key'))).toBe(0o600);
    expect(mode(dir)).toBe(0o700);
    expect(ca.caInfo.kind).toBe('imported');
  });

  it('when a certificate IVIS-core issued is recorded then it is listed and can be revoked', async () => {
    const ca = await LocalCa.open(path.join(tmp.dir, 'imported'));
    const outside = await LocalCa.init(path.join(tmp.dir, 'unrelated'), { keyBits: 2048 });
    const ivisOwn = await ca.issue({ kind: 'client', commonName: 'stand-in' }); // signed by the same key
    const otherCa = await outside.issue({ kind: 'client', commonName: 'stranger' });
    const dir2 = path.join(tmp.dir, 'imported-2');
    const second = await LocalCa.import(dir2, { caCertPem: ivis.certPem, caKeyPem: ivis.keyPem });
    const recorded = await second.record(ivisOwn.certPem);
    expect(recorded).toMatchObject({ kind: 'imported', serial: ivisOwn.info.serial, revoked: false });
    expect(await second.record(ivisOwn.certPem)).toEqual(recorded);
    await expect(second.record(otherCa.certPem)).rejects.toThrow(/not issued by this CA/);
    const writer = recordingWriter();
    expect((await second.revoke(recorded.decimalSerial, writer)).revoked).toBe(true);
    expect(writer.serials).toEqual([recorded.decimalSerial]);
  });

  it.each<[string, () => { caCertPem: string; caKeyPem: string }]>([
    ['a key that is not the certificate’s', () => ({ caCertPem: ivis.certPem, caKeyPem: otherKey() })],
    ['garbage instead of a certificate', () => ({ caCertPem: 'not a certificate', caKeyPem: ivis.keyPem })],
    ['an encrypted key', () => ({ caCertPem: ivis.certPem, caKeyPem: encryptedKey(ivis.keyFile) })],
    ['a leaf certificate (CA:FALSE)', () => leafAsCa()],
  ])(
    'when the files are %s then the import is bad_ca_files and nothing is written',
    async (_label, files) => {
      const dir = path.join(tmp.dir, `bad-${Math.random().toString(36).slice(2)}`);
      expect(await codeOf(LocalCa.import(dir, files()))).toBe('bad_ca_files');
      expect(fs.existsSync(path.join(dir, 'ca.key'))).toBe(false);
    },
  );

  function otherKey(): string {
    return ivisStyleCa(fs.mkdtempSync(path.join(tmp.dir, 'k-'))).keyPem;
  }
  function encryptedKey(keyFile: string): string {
    const out = path.join(tmp.dir, `enc-${Math.random().toString(36).slice(2)}.pem`);
    execFileSync('openssl', ['pkey', '-in', keyFile, '-aes256', '-passout', 'pass:secret', '-out', out]);
    return fs.readFileSync(out, 'utf8');
  }
  function leafAsCa(): { caCertPem: string; caKeyPem: string } {
    const d = fs.mkdtempSync(path.join(tmp.dir, 'leaf-'));
    const key = path.join(d, 'k.pem');
    const cert = path.join(d, 'c.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-nodes',
        '-newkey',
        'rsa:2048',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '10',
        '-subj',
        '/CN=leaf',
        '-addext',
        'basicConstraints=critical,CA:FALSE',
      ],
      { stdio: 'ignore' },
    );
    return { caCertPem: fs.readFileSync(cert, 'utf8'), caKeyPem: fs.readFileSync(key, 'utf8') };
  }
});
