import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitFor, type TestPki } from '@rps/common/testing';

const APACHE_BIN = process.env.APACHE2_BIN ?? '/usr/sbin/apache2';
const MODULES = process.env.APACHE2_MODULES ?? '/usr/lib/apache2/modules';

/** A real Apache httpd in front of a plain-HTTP backend, as IVIS-core's front (ivis-protocol.md 2.2). */
export interface ApacheFront {
  port: number;
  url: string;
  errorLog(): string;
  stop(): Promise<void>;
}

/** Fails (never skips) with the install step when Debian's apache2 is missing. */
export function requireApache(): void {
  if (!fs.existsSync(APACHE_BIN) || !fs.existsSync(path.join(MODULES, 'mod_ssl.so'))) {
    throw new Error(
      `Apache httpd not found at ${APACHE_BIN} (modules in ${MODULES}). The renegotiation test needs the real thing: ` +
        'run `apt-get update && apt-get install -y --no-install-recommends apache2` ' +
        '(or set APACHE2_BIN / APACHE2_MODULES).',
    );
  }
}

/**
 * Starts Apache on a free port with IVIS-core's trusted vhost settings:
 * TLS 1.2 only, no client certificate for the vhost, but `SSLVerifyClient
 * require` under `/rest/remote` (a renegotiation) with the RFC 4523 serial
 * passed on as `x-ivis-cert-serial`; everything proxied to `backendPort`.
 */
export async function startApacheFront(
  pki: TestPki,
  backendPort: number,
  options: { clientCertUnderRestRemote?: boolean } = {},
): Promise<ApacheFront> {
  requireApache();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-apache-'));
  // Workers run as www-data when started as root; they must reach the folder.
  fs.chmodSync(dir, 0o755);
  const file = (name: string, content: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, content, { mode: 0o644 });
    return p;
  };
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const conf = file(
    'httpd.conf',
    [
      `ServerRoot "${dir}"`,
      `Listen 127.0.0.1:${port}`,
      `PidFile ${dir}/httpd.pid`,
      `ErrorLog ${dir}/error.log`,
      'LogLevel warn ssl:info',
      `DefaultRuntimeDir ${dir}`,
      `Mutex file:${dir} default`,
      ...['mpm_event', 'authz_core', 'ssl', 'socache_shmcb', 'headers', 'proxy', 'proxy_http'].map(
        (m) => `LoadModule ${m}_module ${MODULES}/mod_${m}.so`,
      ),
      ...(asRoot ? ['User www-data', 'Group www-data'] : []),
      'ServerName 127.0.0.1',
      'StartServers 1',
      `SSLSessionCache shmcb:${dir}/ssl_scache(512000)`,
      `<VirtualHost 127.0.0.1:${port}>`,
      '  SSLEngine on',
      '  SSLProtocol -all +TLSv1.2',
      `  SSLCertificateFile ${file('server.cert', pki.server.cert)}`,
      `  SSLCertificateKeyFile ${file('server.key', pki.server.key)}`,
      `  SSLCACertificateFile ${file('ca.cert', pki.ca.cert)}`,
      '  SSLVerifyClient none',
      // Off: a vhost without the client-certificate <Location>, like IVIS-core's sandbox
      // (its /rest/remote pushes reach IVIS-core with no x-ivis-cert-serial at all).
      ...(options.clientCertUnderRestRemote === false
        ? []
        : [
            '  <Location /rest/remote>',
            '    SSLVerifyDepth 3',
            '    SSLVerifyClient require',
            '    SSLOptions +StdEnvVars +ExportCertData',
            '    RequestHeader add x-ivis-cert-serial %{SSL_CLIENT_CERT_RFC4523_CEA}e',
            '  </Location>',
          ]),
      `  ProxyPass / http://127.0.0.1:${backendPort}/`,
      '</VirtualHost>',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(APACHE_BIN, ['-f', conf, '-DFOREGROUND'], {
    env: {
      ...process.env,
      APACHE_RUN_DIR: dir,
      APACHE_LOCK_DIR: dir,
      APACHE_LOG_DIR: dir,
      APACHE_PID_FILE: `${dir}/httpd.pid`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const errorLog = () => {
    try {
      return fs.readFileSync(path.join(dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  await waitFor(
    'apache2 listening',
    async () => {
      if (child.exitCode !== null)
        throw new Error(`apache2 exited ${child.exitCode}: ${output} ${errorLog()}`);
      return canConnect(port);
    },
    { timeoutMs: 15_000, intervalMs: 50 },
  );
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    errorLog,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
