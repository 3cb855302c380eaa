import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ClientIdentity } from '../contracts/client-identity.contract';
import { createCa, issueCertificate, type CertificateSpec, type KeyPairPem } from '../tls/pki';

/** Certificates for TLS tests, written to a temporary folder (paths) and kept in memory (PEM). */
export interface TestPki {
  dir: string;
  /** The pool's CA (IVIS-core's local CA in production). */
  ca: KeyPairPem;
  /** Server certificate for 127.0.0.1 / localhost, signed by `ca`. */
  server: KeyPairPem;
  /** A client certificate signed by `ca` (IVIS-core's own certificate). */
  client: KeyPairPem;
  /** `client` as a `gateway.clients` entry (by fingerprint), named `ivis-core`. */
  clientIdentity: ClientIdentity & { fingerprint256: string };
  /** A client certificate from an unrelated CA. */
  foreignClient: KeyPairPem;
  /** A client certificate signed by `ca` whose validity ended yesterday. */
  expiredClient: KeyPairPem;
  /** Writes a PEM string to `<dir>/<name>` and returns the path. */
  write(name: string, pem: string): string;
  /** Paths of `ca.cert`, `svr.pem` (certificate), `svr.key`, as the config names them. */
  paths: { ca: string; cert: string; key: string };
  /** Issues another certificate from `ca` (`extra` for validity, EKU, serial). */
  issue(commonName: string, days?: number, extra?: Partial<CertificateSpec>): KeyPairPem;
  cleanup(): void;
}

/** Generates a CA (X.509 v1 by default, like IVIS-core's) and the usual certificates for a test file. */
export function createTestPki(options: { v1Ca?: boolean } = {}): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-pki-'));
  const ca = createCa({
    commonName: 'IVIS-core CA',
    subject: { O: 'IVIS-core', OU: 'IVIS-core CA' },
    v1: options.v1Ca ?? true,
  });
  const issue = (commonName: string, days = 30, extra: Partial<CertificateSpec> = {}) =>
    issueCertificate(ca, { commonName, ips: ['127.0.0.1', '::1'], dnsNames: ['localhost'], days, ...extra });
  const foreignCa = createCa({ commonName: 'Someone Else CA' });
  const write = (name: string, pem: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, pem, { mode: 0o600 });
    return file;
  };
  const server = issue('IVIS-Executor');
  const client = issue('ivis-core');
  const pki: TestPki = {
    dir,
    ca,
    server,
    client,
    clientIdentity: { name: 'ivis-core', fingerprint256: fingerprint256(client) },
    foreignClient: issueCertificate(foreignCa, { commonName: 'ivis-core' }),
    expiredClient: issueCertificate(ca, {
      commonName: 'ivis-core',
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      days: 9,
    }),
    write,
    paths: {
      ca: write('ca.cert', ca.cert),
      cert: write('svr.pem', server.cert),
      key: write('svr.key', server.key),
    },
    issue,
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
  return pki;
}

/** The SHA-256 fingerprint of a certificate, as `gateway.clients` takes it (`AB:CD:...`). */
export function fingerprint256(pair: KeyPairPem | string): string {
  return new X509Certificate(typeof pair === 'string' ? pair : pair.cert).fingerprint256;
}
