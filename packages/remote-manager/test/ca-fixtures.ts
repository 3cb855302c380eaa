import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';

// Helpers of the CA tests: IVIS-core's CA made the way IVIS-core makes it, and
// a real mutual-TLS handshake.

/** A temporary folder removed by the returned function. */
export function tempDir(label: string): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rps-${label}-`));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * IVIS-core's local CA as `server/certs/remote/init.sh` makes it
 * (ivis-protocol.md 4.1): `openssl req -x509 -nodes` with a config that
 * names only a distinguished name and CSR extensions, which OpenSSL 3.0 turns
 * into an X.509 v1 certificate without extensions. 2048 bits instead of 4096
 * to keep the test quick; nothing else differs.
 */
export function ivisStyleCa(dir: string): {
  certPem: string;
  keyPem: string;
  certFile: string;
  keyFile: string;
} {
  const cnf = path.join(dir, 'localCA.cnf');
  fs.writeFileSync(
    cnf,
    [
      '[ req ]',
      'prompt = no',
      'distinguished_name = req_dn',
      'req_extensions = v3_req',
      '[ req_dn ]',
      'O = IVIS-core',
      'OU = IVIS-core CA',
      'CN = IVIS-core CA',
      '[ v3_req ]',
      'basicConstraints = CA:FALSE',
      'keyUsage = nonRepudiation, digitalSignature, keyEncipherment',
      '',
    ].join('\n'),
  );
  const certFile = path.join(dir, 'ca.cert');
  const keyFile = path.join(dir, 'ca.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-newkey',
      'rsa:2048',
      '-days',
      '9999',
      '-config',
      cnf,
    ],
    { stdio: 'ignore' },
  );
  return {
    certPem: fs.readFileSync(certFile, 'utf8'),
    keyPem: fs.readFileSync(keyFile, 'utf8'),
    certFile,
    keyFile,
  };
}

/** `openssl x509 -text` of a PEM (to read extensions as OpenSSL sees them). */
export function opensslText(certPem: string): string {
  return execFileSync('openssl', ['x509', '-noout', '-text'], { input: certPem }).toString();
}

/** `openssl verify -CAfile ca -purpose P leaf`: true when OpenSSL says OK. */
export function opensslVerifies(
  dir: string,
  caPem: string,
  leafPem: string,
  purpose: 'sslserver' | 'sslclient',
): boolean {
  const ca = path.join(dir, `verify-ca-${process.hrtime.bigint()}.pem`);
  const leaf = path.join(dir, `verify-leaf-${process.hrtime.bigint()}.pem`);
  fs.writeFileSync(ca, caPem);
  fs.writeFileSync(leaf, leafPem);
  try {
    const out = execFileSync('openssl', ['verify', '-CAfile', ca, '-purpose', purpose, leaf], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }).toString();
    return out.includes(': OK');
  } catch {
    return false;
  } finally {
    fs.rmSync(ca, { force: true });
    fs.rmSync(leaf, { force: true });
  }
}

/** What the handshake of {@link mutualTls} ended in. */
export interface HandshakeResult {
  ok: boolean;
  /** The server saw an authorised client certificate with this CN. */
  clientCn?: string;
  error?: string;
}

/**
 * A TLS server with `server`'s certificate that requires a client certificate
 * of `ca`, and one connection from a client with `client`'s, checking the
 * server's name against `servername` / the IP dialled.
 */
export async function mutualTls(opts: {
  caPem: string;
  server: { certPem: string; keyPem: string };
  client: { certPem: string; keyPem: string };
  host?: string;
  servername?: string;
}): Promise<HandshakeResult> {
  let seen: string | undefined;
  const server = tls.createServer(
    {
      cert: opts.server.certPem,
      key: opts.server.keyPem,
      ca: opts.caPem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (socket) => {
      if (socket.authorized) seen = socket.getPeerX509Certificate()?.subject.replace(/^.*CN=/s, '');
      socket.end('hello');
    },
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise<HandshakeResult>((resolve) => {
      const socket = tls.connect({
        host: opts.host ?? '127.0.0.1',
        port,
        ca: opts.caPem,
        cert: opts.client.certPem,
        key: opts.client.keyPem,
        ...(opts.servername ? { servername: opts.servername } : {}),
      });
      let data = '';
      socket.on('data', (d: Buffer) => (data += d.toString()));
      socket.on('end', () => {
        socket.destroy();
        resolve(
          data === 'hello'
            ? { ok: true, ...(seen ? { clientCn: seen } : {}) }
            : { ok: false, error: 'no data' },
        );
      });
      socket.on('error', (err) => resolve({ ok: false, error: err.message }));
    });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
