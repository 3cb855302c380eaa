import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { decimalSerial, loadTlsFiles, TlsFilesError } from '@rps/common';
import { createTestPki, type TestPki } from '@rps/common/testing';

let pki: TestPki;
beforeAll(() => {
  pki = createTestPki();
});
afterAll(() => pki.cleanup());

describe('loadTlsFiles', () => {
  it('when the files are right then cert, key and CA are loaded', () => {
    const material = loadTlsFiles(pki.paths);
    expect(material.certificate.subject).toContain('CN=IVIS-Executor');
    expect(material.ca.toString()).toContain('BEGIN CERTIFICATE');
  });

  it('when a file is missing then the problem names the role and the path', () => {
    expect(() => loadTlsFiles({ ...pki.paths, ca: '/nope/ca.cert' })).toThrow(
      new TlsFilesError(['CA certificate /nope/ca.cert: file not found']),
    );
  });

  it('when the key belongs to another certificate then that mismatch is reported', () => {
    const otherKey = pki.write('other.key', pki.client.key);
    expect(() => loadTlsFiles({ ...pki.paths, key: otherKey })).toThrow(/does not match certificate/);
  });

  it('when a file is not PEM then it says so, and all problems are listed together', () => {
    const junk = pki.write('junk.pem', 'hello');
    try {
      loadTlsFiles({ cert: junk, key: junk, ca: '/missing' });
      throw new Error('expected failure');
    } catch (err) {
      expect((err as TlsFilesError).problems).toHaveLength(3);
    }
  });

  it('when cert and key come as one combined file (machine.pem) then both load from it', () => {
    const combined = pki.write('machine.pem', pki.server.cert + pki.server.key);
    expect(() => loadTlsFiles({ cert: combined, key: combined, ca: pki.paths.ca })).not.toThrow();
  });
});

describe('test PKI over a real mTLS handshake', () => {
  let server: https.Server;
  let port: number;
  beforeAll(async () => {
    server = https.createServer(
      {
        cert: pki.server.cert,
        key: pki.server.key,
        ca: pki.ca.cert,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => res.end((req.socket as TLSSocket).getPeerCertificate().subject?.CN ?? ''),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => new Promise<void>((r) => server.close(() => r())));

  const get = (client?: { cert: string; key: string }) =>
    new Promise<string>((resolve, reject) => {
      const req = https.get(
        { host: '127.0.0.1', port, path: '/', ca: pki.ca.cert, ...client, agent: false },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve(body));
        },
      );
      req.on('error', reject);
    });

  it("when the CA is X.509 v1 like IVIS-core's then Node trusts it and a client from it gets in", async () => {
    expect(new X509Certificate(pki.ca.cert).toLegacyObject().ext_key_usage).toBeUndefined();
    await expect(get(pki.client)).resolves.toBe('ivis-core');
  });

  it('when the client has no certificate, a foreign one or an expired one then the handshake fails', async () => {
    await expect(get()).rejects.toThrow();
    await expect(get(pki.foreignClient)).rejects.toThrow();
    await expect(get(pki.expiredClient)).rejects.toThrow();
  });

  it('when a serial is read then it is the decimal form IVIS-core compares', () => {
    const cert = new X509Certificate(pki.client.cert);
    expect(decimalSerial(cert)).toBe(BigInt(`0x${cert.serialNumber}`).toString());
    expect(decimalSerial(cert)).toMatch(/^[1-9][0-9]+$/);
  });
});
