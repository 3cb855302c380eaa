// Driver of bench/forwarder/run.sh (see there). Prints a markdown table.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { createRedisKeys, peerRecordToHash, type PeerRecord } from '@rps/common';
import { createTestPki, freePort } from '@rps/common/testing';
import { Redis } from 'ioredis';

// Compiled to bench/forwarder/dist/ by run.sh.
const HERE = path.basename(__dirname) === 'dist' ? path.dirname(__dirname) : __dirname;
const ROOT = path.resolve(HERE, '../..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
// Several short rounds rather than a few long ones: the machine's other load
// comes in bursts, and the per-round ratio against Apache (measured seconds
// apart) survives a burst that one long round would not.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const LATENCY_SECONDS = Math.max(3, Math.round(SECONDS / 3));
const CONNECTIONS = 16;
const MODULES = '/usr/lib/apache2/modules';
const children: Array<ChildProcess & { stopping?: boolean }> = [];

function start(name: string, cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  const child: ChildProcess & { stopping?: boolean } = spawn(cmd, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    ...options,
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  child.on('exit', (code) => {
    if (!child.stopping && code !== 0) console.error(`[bench] ${name} exited ${code}: ${err}`);
  });
  children.push(child);
  return child;
}

function stopAll() {
  for (const c of children) {
    c.stopping = true;
    if (c.exitCode === null) c.kill('SIGTERM');
  }
}
process.on('exit', stopAll);
process.on('SIGINT', () => process.exit(130));

async function waitPort(port: number, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not listen on ${port}`);
}

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
}

/** User plus system CPU seconds of a process so far (Linux /proc; clock ticks are 100 Hz there). */
function processCpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** CPU seconds of a process and its live children (the forwarder's cluster workers). */
function cpuSeconds(pid: number): number {
  let children: number[] = [];
  try {
    children = fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    // no children file: count the process alone
  }
  return [pid, ...children].reduce((sum, p) => sum + processCpuSeconds(p), 0);
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000 };

function wrk(url: string, connections: number, seconds: number): WrkResult {
  const out = execFileSync(
    'wrk',
    [
      '-t',
      String(Math.min(2, connections)),
      '-c',
      String(connections),
      '-d',
      `${seconds}s`,
      '--latency',
      '-s',
      path.join(HERE, 'push.lua'),
      url,
    ],
    { encoding: 'utf8', timeout: (seconds + 30) * 1000 },
  );
  const ms = (label: number) => {
    const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out);
    if (!m) return NaN;
    return Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? NaN);
  };
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? '0';
  const socketErrors = /Socket errors: (.*)/.exec(out)?.[1];
  if (errors !== '0' || socketErrors)
    console.error(`[bench] ${url}: non-2xx ${errors}, socket errors ${socketErrors ?? 0}`);
  return { rps, p50: ms(50), p99: ms(99) };
}

function apacheConf(dir: string, port: number, upstreamPort: number): string {
  return [
    `ServerRoot "${dir}"`,
    `Listen 127.0.0.1:${port}`,
    `PidFile ${dir}/apache.pid`,
    `ErrorLog ${dir}/apache-error.log`,
    'LogLevel warn',
    `DefaultRuntimeDir ${dir}`,
    `Mutex file:${dir} default`,
    ...['mpm_event', 'authz_core', 'ssl', 'socache_shmcb', 'headers', 'proxy', 'proxy_http'].map(
      (m) => `LoadModule ${m}_module ${MODULES}/mod_${m}.so`,
    ),
    ...(process.getuid?.() === 0 ? ['User www-data', 'Group www-data'] : []),
    'ServerName 127.0.0.1',
    `SSLSessionCache shmcb:${dir}/ssl_scache(512000)`,
    // The original relay (ivis-protocol.md 2.1), as rjr-setup.js generates it.
    `<VirtualHost 127.0.0.1:${port}>`,
    '  SSLProxyEngine On',
    `  SSLProxyMachineCertificateFile ${dir}/machine.pem`,
    `  SSLProxyCACertificateFile ${dir}/ca.cert`,
    '  SSLProxyVerify require',
    '  SSLProxyCheckPeerCN on',
    '  SSLProxyCheckPeerExpire on',
    '  SSLProxyVerifyDepth 4',
    `  ProxyPass "/" "https://localhost:${upstreamPort}/"`,
    '</VirtualHost>',
    '',
  ].join('\n');
}

function nginxConf(dir: string, port: number, upstreamPort: number): string {
  return `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
${process.getuid?.() === 0 ? 'user www-data;' : ''}
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  upstream ivis { server 127.0.0.1:${upstreamPort}; keepalive 32; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass https://ivis;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_ssl_certificate ${dir}/svr.pem;
      proxy_ssl_certificate_key ${dir}/svr.key;
      proxy_ssl_trusted_certificate ${dir}/ca.cert;
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_session_reuse on;
    }
  }
}
`;
}

async function main(): Promise<void> {
  const pki = createTestPki();
  const dir = pki.dir;
  fs.chmodSync(dir, 0o755);
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
  fs.writeFileSync(path.join(dir, 'machine.pem'), pki.server.cert + pki.server.key, { mode: 0o644 });
  const port = () => freePort();
  const [mtls, direct, apache, nginx, forwarder, admin, redis] = await Promise.all([
    port(),
    port(),
    port(),
    port(),
    port(),
    port(),
    port(),
  ]);

  start('upstream', process.execPath, [
    path.join(__dirname, 'upstream.js'),
    dir,
    String(mtls),
    String(direct),
  ]);
  start('redis', 'redis-server', [
    '--port',
    String(redis),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
  ]);
  fs.writeFileSync(path.join(dir, 'httpd.conf'), apacheConf(dir, apache, mtls));
  start('apache', '/usr/sbin/apache2', ['-f', path.join(dir, 'httpd.conf'), '-DFOREGROUND'], {
    env: { ...process.env, APACHE_RUN_DIR: dir, APACHE_LOCK_DIR: dir, APACHE_LOG_DIR: dir },
  });
  fs.writeFileSync(path.join(dir, 'nginx.conf'), nginxConf(dir, nginx, mtls));
  start('nginx', '/usr/sbin/nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir]);
  fs.writeFileSync(
    path.join(dir, 'forwarder.yaml'),
    [
      `redis: { url: "redis://127.0.0.1:${redis}/0", prefix: "{bench}" }`,
      'log: { level: info }',
      'forwarder:',
      `  admin: { host: 127.0.0.1, port: ${admin} }`,
      `  tls: { cert: svr.pem, key: svr.key, ca: ca.cert }`,
      `  routes: { trusted: { listen: { host: 127.0.0.1, port: ${forwarder} }, upstream: "https://localhost:${mtls}" } }`,
      // wrk's source only: the registry scenario's peers (127.0.0.50+) must be registered.
      '  allow: ["127.0.0.1/32"]',
    ].join('\n'),
  );
  // Access log on, written to /dev/null: the JSON line per request is part of the cost.
  // BENCH_FORWARDER_NODE=<node binary> runs the forwarder on another Node (A/B of runtimes).
  const relay = start(
    'forwarder',
    process.env.BENCH_FORWARDER_NODE ?? process.execPath,
    [
      // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of the forwarder at its exit.
      ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
      process.env.BENCH_FORWARDER_ENTRY ?? path.join(ROOT, 'packages/peer-forwarder/dist/main.js'),
    ],
    {
      env: { ...process.env, RPS_CONFIG: path.join(dir, 'forwarder.yaml') },
    },
  );
  const ports: Array<[number, string]> = [
    [mtls, 'upstream'],
    [direct, 'upstream (direct)'],
    [apache, 'apache2'],
    [nginx, 'nginx'],
    [forwarder, 'peer-forwarder'],
  ];
  for (const [port, what] of ports) await waitPort(port, what);

  const all: Array<[string, string, string]> = [
    ['direct', 'direct (HTTPS to the upstream, no relay)', `https://127.0.0.1:${direct}/`],
    ['apache', 'Apache httpd 2.4 as the original relay', `http://127.0.0.1:${apache}/`],
    ['nginx', 'nginx 1.22 (1 worker, upstream keepalive 32)', `http://127.0.0.1:${nginx}/`],
    ['forwarder', 'peer-forwarder (this package)', `http://127.0.0.1:${forwarder}/`],
  ];
  // BENCH_PATHS=apache,forwarder runs only those rows (quick A/B loops); the
  // "added" latency columns need the direct row and show n/a without it.
  const only = process.env.BENCH_PATHS?.split(',').map((s) => s.trim());
  const targets = all
    .filter(([key]) => !only || only.includes(key))
    .map(([, name, url]): [string, string] => [name, url]);
  // Rounds interleave the targets, so a burst of unrelated load on the
  // machine hits every row alike; each row reports its median round.
  const rounds: Array<Array<WrkResult & { latency: WrkResult }>> = targets.map(() => []);
  // The forwarder's own CPU time per request: unlike requests/s it hardly
  // moves with unrelated load on the machine, so it is the figure for A/B.
  const cpuPerRequest: number[] = [];
  for (const [, url] of targets) wrk(url, CONNECTIONS, 2);
  for (let round = 0; round < ROUNDS; round++) {
    targets.forEach(([name, url], i) => {
      process.stderr.write(`[bench] round ${round + 1}/${ROUNDS}: ${name}\n`);
      const cpuBefore = relay.pid ? cpuSeconds(relay.pid) : NaN;
      const load = wrk(url, CONNECTIONS, SECONDS);
      if (url.endsWith(`:${forwarder}/`)) {
        cpuPerRequest.push(((cpuSeconds(relay.pid!) - cpuBefore) * 1e6) / (load.rps * SECONDS));
      }
      rounds[i]!.push({ ...load, latency: wrk(url, 1, LATENCY_SECONDS) });
    });
  }
  const median = (values: number[]) =>
    [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
  const apacheIndex = targets.findIndex(([name]) => name.startsWith('Apache'));
  const results = targets.map(([name], i) => {
    const runs = rounds[i]!;
    // Each round's requests/s over Apache's in the same round.
    const ratios = runs.map((r, round) => r.rps / (rounds[apacheIndex]?.[round]?.rps ?? NaN));
    return {
      name,
      ratio: median(ratios),
      ratios: ratios.map((x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a')).join(', '),
      rps: median(runs.map((r) => r.rps)),
      all: runs.map((r) => Math.round(r.rps)).join(', '),
      loadP50: median(runs.map((r) => r.p50)),
      loadP99: median(runs.map((r) => r.p99)),
      p50: median(runs.map((r) => r.latency.p50)),
      p99: median(runs.map((r) => r.latency.p99)),
    };
  });
  const base = results.find((r) => r.name.startsWith('direct'));
  const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
  console.log(
    `\nRelay benchmark, ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}, wrk ${CONNECTIONS} connections, median of ${ROUNDS} interleaved ${SECONDS} s rounds; latency at 1 connection (${LATENCY_SECONDS} s)\n`,
  );
  console.log(
    '| path | requests/s (16 conn) | rounds | vs Apache (median of rounds) | per round | p50 / p99 at 16 conn (ms) | added p50 (ms) | added p99 (ms) |',
  );
  console.log('|---|---:|---|---:|---|---:|---:|---:|');
  for (const r of results) {
    const added =
      r === base ? ['-', '-'] : [f(r.p50 - (base?.p50 ?? NaN), 3), f(r.p99 - (base?.p99 ?? NaN), 3)];
    console.log(
      `| ${r.name} | ${Math.round(r.rps)} | ${r.all} | ${f(r.ratio)}x | ${r.ratios} | ${f(r.loadP50)} / ${f(r.loadP99)} | ${added[0]} | ${added[1]} |`,
    );
  }
  if (cpuPerRequest.length > 0) {
    console.log(
      `\npeer-forwarder CPU per request at 16 conn: ${cpuPerRequest.map((c) => c.toFixed(0)).join(', ')} us (median ${median(cpuPerRequest).toFixed(0)} us)`,
    );
  }
  if (targets.some(([name]) => name.startsWith('peer-forwarder'))) {
    const { joins, removals } = await registryPropagation(`redis://127.0.0.1:${redis}/0`, forwarder);
    const ms = (values: number[]) =>
      `p50 ${median(values).toFixed(0)} ms, max ${Math.max(...values).toFixed(0)} ms (${values.length} peers)`;
    console.log(
      `\npeer registry -> forwarder allow-list (record written and announced, until a request from the peer's address passes or is refused):`,
    );
    console.log(`  join:    ${ms(joins)}`);
    console.log(`  removal: ${ms(removals)}`);
  }
  stopAll();
  await new Promise((r) => setTimeout(r, 300));
  pki.cleanup();
}

const REGISTRY_PEERS = 20;

/** The status a request from `localAddress` gets (loopback aliases are all this host). */
function statusFrom(port: number, localAddress: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/rest/remote/emit', localAddress, agent: false },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** Milliseconds from `started` until a request from `localAddress` gets `status`. */
async function until(port: number, localAddress: string, status: number, started: number): Promise<number> {
  while (performance.now() - started < 30_000) {
    if ((await statusFrom(port, localAddress)) === status) return performance.now() - started;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${localAddress} never got ${status}`);
}

/**
 * How fast the forwarder follows the peer registry (issue: within a second):
 * peers written and announced the way the agent and scheduler do, timed
 * until a request from the peer's address gets through (join) or is refused
 * (removal). The forwarder's periodic refresh (5 s) is the fallback; these
 * figures are the event path.
 */
async function registryPropagation(
  redisUrl: string,
  port: number,
): Promise<{ joins: number[]; removals: number[] }> {
  const redis = new Redis(redisUrl);
  const keys = createRedisKeys('{bench}');
  const joins: number[] = [];
  const removals: number[] = [];
  try {
    for (let i = 0; i < REGISTRY_PEERS; i++) {
      const id = `bench-peer-${i}`;
      const address = `127.0.0.${50 + i}`;
      const now = Date.now();
      let started = performance.now();
      const record: PeerRecord = {
        id,
        address,
        capacity: 1,
        executor: 'builtin',
        version: 'bench',
        state: 'active',
        adminUrl: '',
        registeredAt: now,
        heartbeatAt: now,
      };
      await redis
        .multi()
        .hset(keys.peer(id), peerRecordToHash(record))
        .zadd(keys.peers(), now, id)
        .publish(keys.peerEvents(), JSON.stringify({ type: 'joined', peerId: id, at: now }))
        .exec();
      joins.push(await until(port, address, 200, started));
      started = performance.now();
      await redis
        .multi()
        .hset(keys.peer(id), 'state', 'removed')
        .publish(keys.peerEvents(), JSON.stringify({ type: 'removed', peerId: id, at: Date.now() }))
        .exec();
      removals.push(await until(port, address, 403, started));
    }
  } finally {
    redis.disconnect();
  }
  return { joins, removals };
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
