import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { freePort, TEST_PYTHON, type TestPki, type TestRedisServer } from '@rps/common/testing';

const ROOT = path.resolve(
  __dirname,
  fs.existsSync(path.join(__dirname, '../../package.json')) ? '../..' : '../../..',
);

/** The RPS processes a chaos run kills; `redis` is handled by the test kit's server. */
export type ProcessKind = 'gateway' | 'forwarder' | 'scheduler' | 'agent';

const MAINS: Record<ProcessKind, string> = {
  gateway: 'packages/rps-gateway/dist/main.js',
  forwarder: 'packages/peer-forwarder/dist/main.js',
  scheduler: 'packages/scheduler-sync/dist/main.js',
  agent: 'packages/peer-agent/dist/main.js',
};

/** One service of the pool as a real process from dist/, restartable with the same config. */
export class PoolProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  /** Every line it printed across its lives (pino JSON), for the report of a failed check. */
  readonly log: string[] = [];
  starts = 0;

  constructor(
    readonly name: string,
    readonly kind: ProcessKind,
    private readonly configFile: string,
    readonly adminPort: number,
    /** `command` goes before `node <main>` (e.g. `ip netns exec <ns>`); `adminHost` is where `/readyz` is asked. */
    private readonly options: { command?: string[]; adminHost?: string } = {},
  ) {}

  start(): void {
    const main = path.join(ROOT, MAINS[this.kind]);
    if (!fs.existsSync(main)) throw new Error(`${main} is missing: run npm run build`);
    const [command, ...args] = [...(this.options.command ?? []), process.execPath, main];
    const child = spawn(command, args, {
      env: { ...process.env, RPS_CONFIG: this.configFile, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const collect = (data: Buffer) => {
      for (const line of data.toString().split('\n')) if (line) this.log.push(line);
      if (this.log.length > 20_000) this.log.splice(0, this.log.length - 20_000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    this.child = child;
    this.starts += 1;
  }

  /** SIGKILL: no shutdown hook runs, in-memory state is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM and wait (the end of a chaos run). */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** True once `/readyz` on the admin listener answers 200. */
  ready(): Promise<boolean> {
    return new Promise((resolve) => {
      const req = http.get(
        { host: this.options.adminHost ?? '127.0.0.1', port: this.adminPort, path: '/readyz', timeout: 1000 },
        (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
    });
  }
}

/** Ports and files of one chaos pool. */
export interface PoolLayout {
  gatewayPort: number;
  rpsConfig: string;
  agentConfigs: string[];
  adminPorts: Record<string, number>;
  /** The forwarder's route ports (what a peer pushes to). */
  routes: Record<'es' | 'trusted' | 'sandbox', number>;
}

export interface LayoutOptions {
  dir: string;
  redis: TestRedisServer;
  prefix: string;
  pki: TestPki;
  ivisUrl: string;
  agents: number;
  capacity: number;
  heartbeatTimeoutMs: number;
  /** Per-route upstreams instead of `ivisUrl` (the end-to-end tests put Apache fronts there). */
  routeUpstreams?: Partial<Record<'es' | 'trusted' | 'sandbox', string>>;
}

/**
 * Writes the RPS host's config (one file, as DESIGN.md's operator contract
 * has it) and one file per agent, on free ports. JSON is YAML.
 */
export async function writeLayout(options: LayoutOptions): Promise<PoolLayout> {
  const { dir, pki } = options;
  const tls = { cert: pki.paths.cert, key: pki.paths.key, ca: pki.paths.ca };
  const port = () => freePort();
  const gatewayPort = await port();
  const adminPorts: Record<string, number> = {
    gateway: await port(),
    forwarder: await port(),
    scheduler: await port(),
  };
  const routes = { es: await port(), trusted: await port(), sandbox: await port() };
  const redis = { url: options.redis.url, prefix: options.prefix };
  const log = { level: 'info' };
  const rps = {
    redis,
    log,
    gateway: {
      listen: { host: '127.0.0.1', port: gatewayPort },
      admin: { host: '127.0.0.1', port: adminPorts.gateway },
      tls,
      stopAckTimeoutMs: 1000,
      clients: [pki.clientIdentity],
    },
    forwarder: {
      admin: { host: '127.0.0.1', port: adminPorts.forwarder },
      tls,
      peerRefreshMs: 1000,
      routes: Object.fromEntries(
        Object.entries(routes).map(([name, p]) => [
          name,
          {
            listen: { host: '127.0.0.1', port: p },
            upstream: options.routeUpstreams?.[name as 'es'] ?? options.ivisUrl,
          },
        ]),
      ),
      allow: [],
    },
    scheduler: {
      admin: { host: '127.0.0.1', port: adminPorts.scheduler },
      heartbeatTimeoutMs: options.heartbeatTimeoutMs,
      tickMs: 500,
      trustedUrlBase: `http://127.0.0.1:${routes.trusted}`,
    },
  };
  const rpsConfig = path.join(dir, 'rps.yaml');
  fs.writeFileSync(rpsConfig, JSON.stringify(rps, null, 2));
  const agentConfigs: string[] = [];
  for (let i = 1; i <= options.agents; i++) {
    const name = `agent-${i}`;
    adminPorts[name] = await port();
    const agent = {
      redis,
      log,
      agent: {
        id: `chaos-peer-${i}`,
        // Each agent shows the forwarder its own loopback source address.
        address: '127.0.0.1',
        capacity: options.capacity,
        admin: { host: '127.0.0.1', port: adminPorts[name] },
        heartbeatIntervalMs: Math.max(200, Math.floor(options.heartbeatTimeoutMs / 5)),
        stopGraceMs: 1000,
        executor: {
          kind: 'builtin',
          workDir: path.join(dir, name),
          python: TEST_PYTHON,
          subtypes: { __default__: { libs: [] } },
          allowSameUser: true, // a plain user's run: jobs as that user (root: as rps-job)
        },
        ivis: {
          trustedUrlBase: `http://127.0.0.1:${routes.trusted}`,
          sandboxUrlBase: `http://127.0.0.1:${routes.sandbox}`,
          es: { host: '127.0.0.1', port: routes.es },
        },
      },
    };
    const file = path.join(dir, `${name}.yaml`);
    fs.writeFileSync(file, JSON.stringify(agent, null, 2));
    agentConfigs.push(file);
  }
  return { gatewayPort, rpsConfig, agentConfigs, adminPorts, routes };
}
