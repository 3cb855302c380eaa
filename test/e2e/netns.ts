import { execFile, execFileSync } from 'node:child_process';

// Hosts of their own on one machine (FACTS.md, "Multi-host tests"): a network
// namespace per host, joined to the root namespace (the RPS host) by a veth
// pair with a /24 of its own. Names carry the test process's pid, so a run
// never touches another run's namespaces and a later run can tell a dead
// run's leftovers (its pid is gone) and remove them.

/** What the names of one run start with: `rpsmh<pid>-<host>` (namespace), `rmh<pid>h<n>`/`n<n>` (veth ends). */
const NS = /^rpsmh(\d+)-/;
const LINK = /^rmh(\d+)[hn]\d+$/;

export interface NetHost {
  /** Namespace name. */
  ns: string;
  /** The veth end in the root namespace (cut it to cut the host off). */
  hostLink: string;
  /** The RPS host's address on this link (the root namespace's end). */
  rpsAddress: string;
  /** This host's own address: the source address the RPS host sees. */
  address: string;
  /** `ip netns exec <ns>`: prefix for commands run on this host. */
  exec: string[];
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why this machine cannot run the test (not root, no `ip`, no namespaces), or null. */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0)
    return 'network namespaces need root (ip netns add, veth pairs); CI runs the suite as root';
  try {
    ip('-V');
  } catch {
    return "the 'ip' command is missing (Debian package iproute2; scripts/test.sh installs it as root)";
  }
  return null;
}

/** Removes namespaces and veth links of earlier runs whose process is gone (a killed run leaves them). */
export function removeStale(): string[] {
  const removed: string[] = [];
  for (const line of ip('netns', 'list').split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const pid = NS.exec(name)?.[1];
    if (pid && !alive(Number(pid))) {
      ip('netns', 'del', name);
      removed.push(name);
    }
  }
  for (const line of ip('-o', 'link', 'show').split('\n')) {
    const name = /^\d+: ([^:@]+)/.exec(line)?.[1] ?? '';
    const pid = LINK.exec(name)?.[1];
    if (pid && !alive(Number(pid))) {
      try {
        ip('link', 'del', name); // its pair goes with it
        removed.push(name);
      } catch {
        // gone with its namespace already
      }
    }
  }
  return removed;
}

/** A third octet for `count` /24s under 10.77.0.0/16 that no interface here uses yet. */
function freeOctets(count: number): number[] {
  const used = ip('-o', '-4', 'addr', 'show');
  for (let base = (process.pid % 50) * 5; ; base = (base + 5) % 250) {
    const octets = Array.from({ length: count }, (_, i) => base + i + 1);
    if (octets.every((o) => !used.includes(` 10.77.${o}.`))) return octets;
  }
}

/** Creates one namespace per label, each with its veth link and addresses, loopback up. */
export function createHosts(labels: string[]): NetHost[] {
  const octets = freeOctets(labels.length);
  const hosts: NetHost[] = [];
  labels.forEach((label, i) => {
    const ns = `rpsmh${process.pid}-${label}`;
    const hostLink = `rmh${process.pid}h${i}`;
    const nsLink = `rmh${process.pid}n${i}`;
    const rpsAddress = `10.77.${octets[i]}.1`;
    const address = `10.77.${octets[i]}.2`;
    ip('netns', 'add', ns);
    hosts.push({ ns, hostLink, rpsAddress, address, exec: ['ip', 'netns', 'exec', ns] });
    ip('link', 'add', hostLink, 'type', 'veth', 'peer', 'name', nsLink);
    ip('link', 'set', nsLink, 'netns', ns);
    ip('addr', 'add', `${rpsAddress}/24`, 'dev', hostLink);
    ip('link', 'set', hostLink, 'up');
    ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${address}/24`, 'dev', nsLink);
    ip('netns', 'exec', ns, 'ip', 'link', 'set', nsLink, 'up');
    ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
  });
  return hosts;
}

/** Deletes every namespace and link of this run (whatever exists of them). */
export function removeHosts(hosts: NetHost[]): void {
  for (const host of hosts) {
    for (const args of [
      ['netns', 'del', host.ns],
      ['link', 'del', host.hostLink],
    ]) {
      try {
        ip(...args);
      } catch {
        // not there (never created, or gone with the namespace)
      }
    }
  }
}

/** Cuts (`down`) or restores (`up`) a host's only link to the RPS host. */
export function setLink(host: NetHost, state: 'up' | 'down'): void {
  ip('link', 'set', host.hostLink, state);
}

/**
 * One HTTP POST made from inside a host (a node one-liner under `ip netns
 * exec`), so its source address is the host's own. Asynchronous: the test
 * process serves the IVIS-core double that the request ends at.
 */
export function postFrom(
  host: NetHost,
  url: string,
  body: unknown,
): Promise<{ status: number; text: string } | { error: string }> {
  const script = `
    const [url, body] = process.argv.slice(1);
    const req = require('node:http').request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, timeout: 10000 }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, text })));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => console.log(JSON.stringify({ error: e.message })));
    req.end(body);`;
  return new Promise((resolve, reject) => {
    execFile(
      host.exec[0]!,
      [...host.exec.slice(1), process.execPath, '-e', script, url, JSON.stringify(body)],
      { encoding: 'utf8', timeout: 30_000 },
      (err, stdout) => {
        if (err) return reject(new Error(`ip netns exec ${host.ns}: ${err.message}`));
        resolve(JSON.parse(stdout) as { status: number; text: string } | { error: string });
      },
    );
  });
}
