import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { clientIdentitySchema } from '../contracts/client-identity.contract';
import { parseByteSize } from './size';

/**
 * The config schema, one zod object per section of the YAML file. The section
 * and key names are the operator contract of DESIGN.md ("Operator contract"):
 * add keys freely, rename none without a migration note.
 *
 * Built per file because relative paths resolve against the file's folder.
 */
export function createConfigSchema(baseDir: string) {
  const filePath = z
    .string()
    .min(1, 'must be a non-empty path')
    .transform((p) => path.resolve(baseDir, p));
  const port = z.number().int().min(0).max(65535);
  const listen = (host: string, portNumber: number) =>
    z.strictObject({ host: z.string().min(1).default(host), port: port.default(portNumber) }).prefault({});
  const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });
  const byteSize = z.union([z.string(), z.number()]).transform((value, ctx) => {
    const bytes = parseByteSize(value);
    if (bytes === null) {
      ctx.addIssue({ code: 'custom', message: 'must be a byte size such as 64mb, 512kb or 1048576' });
      return z.NEVER;
    }
    return bytes;
  });
  const tlsFiles = (dir: string) =>
    z
      .strictObject({
        cert: filePath.prefault(`${dir}/svr.pem`),
        key: filePath.prefault(`${dir}/svr.key`),
        ca: filePath.prefault(`${dir}/ca.cert`),
      })
      .prefault({});

  const redis = z
    .strictObject({
      url: z
        .string()
        .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
        .default('redis://127.0.0.1:6379/0'),
      prefix: z
        .string()
        .regex(/^[^\s:]+$/, 'must be a non-empty string without spaces or colons')
        .default('{rps}'),
    })
    .prefault({});

  const log = z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({});

  const gateway = z
    .strictObject({
      listen: listen('0.0.0.0', 10327),
      admin: listen('127.0.0.1', 9327),
      tls: tlsFiles('certs'),
      bodyLimit: byteSize.default(64 * 1024 ** 2),
      /** How long a stop of a running run waits for the owning agent's acknowledgement (then 503). */
      stopAckTimeoutMs: z.number().int().min(100).default(5000),
      /**
       * How long a connection's "client certificate not revoked" verdict holds before it is checked
       * again (0: every request). 500 ms makes a revocation count within a second on open keep-alive
       * connections too, for one SISMEMBER per connection per interval.
       */
      revocationRecheckMs: z.number().int().min(0).default(500),
      /** Delivery attempts of pushes the gateway originates (a stopped queued run), with exponential backoff. */
      pushAttempts: z.number().int().min(1).default(10),
      pushBackoffMs: z.number().int().min(10).default(1000),
      /** The client certificates let in (IVIS-core's): a certificate of the CA not listed gets 403. */
      clients: z.array(clientIdentitySchema).default([]),
      /** Admit every certificate of `tls.ca` (every executor's too); must be chosen explicitly. */
      allowAnyClientOfCa: z.boolean().default(false),
    })
    .superRefine((gateway, ctx) => {
      if (gateway.clients.length === 0 && !gateway.allowAnyClientOfCa) {
        ctx.addIssue({
          code: 'custom',
          path: ['clients'],
          message:
            "must name IVIS-core's client certificate ({ name, fingerprint256 } or { name, serial, issuer }; docs/gateway.md), or set gateway.allowAnyClientOfCa: true to admit every certificate of gateway.tls.ca",
        });
      }
    })
    .prefault({});

  const route = (portNumber: number) =>
    z.strictObject({ listen: listen('0.0.0.0', portNumber), upstream: httpUrl });

  const forwarder = z
    .strictObject({
      admin: listen('127.0.0.1', 9328),
      tls: z
        .strictObject({
          cert: filePath.prefault('certs/svr.pem'),
          key: filePath.prefault('certs/svr.key'),
          ca: filePath.prefault('certs/ca.cert'),
          /** Trust the system roots instead of `ca` for IVIS-core's server certificate. */
          useSystemRoots: z.boolean().default(false),
        })
        .prefault({}),
      /** The keep-alive pool towards IVIS-core, per route. */
      upstream: z
        .strictObject({
          connections: z.number().int().min(1).default(64),
          keepAliveTimeoutMs: z.number().int().min(100).default(4000),
          connectTimeoutMs: z.number().int().min(100).default(10_000),
          /** IVIS-core answers a final status push only after its DELETE to the pool: keep this long. */
          headersTimeoutMs: z.number().int().min(100).default(120_000),
          /** Idle time allowed between body chunks (long Elasticsearch scrolls). */
          bodyTimeoutMs: z.number().int().min(100).default(300_000),
        })
        .prefault({}),
      /** Bounds on every phase of a peer connection, and per-source connection caps (docs/forwarder.md, "Limits"). */
      limits: z
        .strictObject({
          /** Connection accepted (or a later request begun) until its head is complete; then 408. */
          headMs: z.number().int().min(100).default(20_000),
          /** Silence inside a request body from the peer; then 408. */
          bodyIdleMs: z.number().int().min(100).default(30_000),
          /** Request begun until it is completely received; then 408. */
          requestMs: z.number().int().min(100).default(300_000),
          /** A peer that takes no response bytes for this long has its connection cut. */
          writeStallMs: z.number().int().min(100).default(60_000),
          /** Wait for a free upstream connection; then 503. */
          queueMs: z.number().int().min(100).default(30_000),
          /** Idle peer connection between requests; then closed. */
          keepAliveMs: z.number().int().min(100).default(5000),
          /** After a refusal or a connection's last answer: how long the peer may take to close before it is cut. */
          lingerMs: z.number().int().min(0).default(2000),
          /** Open connections per source that is not allowed (each gets its 403 and lingers). */
          connectionsPerStranger: z.number().int().min(1).default(4),
          /** Open connections per allowed source (a peer, or an address in `allow`). */
          connectionsPerPeer: z.number().int().min(1).default(128),
          /** Response bytes held in memory per answer before they spill to a temporary file. */
          responseBufferBytes: byteSize.default(1024 ** 2),
          /** Cap of that temporary file per answer (0: no file); past it the upstream waits for the peer. */
          responseFileBytes: byteSize.default(256 * 1024 ** 2),
        })
        .prefault({}),
      /** Full re-read of the peer registry; peer events cover the fast path. */
      peerRefreshMs: z.number().int().min(100).default(5000),
      routes: z
        .strictObject({ es: route(10328), trusted: route(10329), sandbox: route(10330) })
        .partial()
        .default({}),
      allow: z.array(z.string().min(1)).default([]),
      /**
       * Admit loopback sources (127.0.0.0/8, ::1): the RPS host's own services,
       * e.g. scheduler-sync delivering a lost run's RUN_FAIL with no agent alive.
       * Only processes on this host can use loopback; turn it off where local
       * users must not reach IVIS-core with the pool's certificate.
       */
      allowLoopback: z.boolean().default(true),
    })
    .prefault({});

  const executor = z.discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('builtin'),
      workDir: filePath.prefault('/var/lib/rps-agent'),
      python: z.string().min(1).default('python3'),
      subtypes: z
        .record(z.string(), z.strictObject({ libs: z.array(z.string()).default([]) }))
        .default({ __default__: { libs: ['elasticsearch6', 'requests'] } }),
      /** A task build (extract, venv, pip) that takes longer fails the run. */
      buildTimeoutMs: z.number().int().min(1000).default(600_000),
      /** Extra `pip install` arguments, e.g. `[--no-index, --find-links, /srv/wheels]` on offline peers. */
      pipArgs: z.array(z.string()).default([]),
      /** Folder holding IVIS-core's `ivis` helper wheel, installed into every job environment when set. */
      ivisWheelDir: filePath.nullable().default(null),
      /** The unprivileged user jobs run as (never root, never the agent's user unless allowSameUser). */
      runAs: z
        .string()
        .regex(/^[a-z_][a-z0-9_.-]{0,31}$/i, 'must be a user name')
        .default('rps-job'),
      /** Development only: an agent that is not root runs jobs as its own user (no isolation by user). */
      allowSameUser: z.boolean().default(false),
      /** Added to the agent's niceness for job processes, so the agent's own work is not starved by its jobs (0: none). */
      nice: z.number().int().min(0).max(19).default(10),
      /** What one job may use; null switches a limit off (docs/peer-agent.md, "Isolation of jobs"). */
      limits: z
        .strictObject({
          wallMs: z.number().int().min(100).nullable().default(3_600_000),
          memoryMb: z.number().int().min(16).nullable().default(2048),
          cpuSeconds: z.number().int().min(1).nullable().default(null),
          openFiles: z.number().int().min(16).nullable().default(1024),
          processes: z.number().int().min(1).nullable().default(512),
          fileSizeMb: z.number().int().min(1).nullable().default(1024),
          outputBytes: byteSize.nullable().default(256 * 1024 ** 2),
        })
        .prefault({}),
    }),
    z.strictObject({ kind: z.literal('rjr'), url: httpUrl }),
  ]);

  const agent = z
    .strictObject({
      id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ -'),
      address: z.string().min(1),
      capacity: z.number().int().min(1).max(1024).default(2),
      admin: listen('127.0.0.1', 9331),
      /** How often the agent refreshes its registration; keep well under scheduler.heartbeatTimeoutMs. */
      heartbeatIntervalMs: z.number().int().min(100).default(2000),
      /** Stored output cap per run in bytes (IVIS-core's maxRunOutputBytes). */
      maxOutputBytes: byteSize.default(1_000_000),
      /** Time between SIGINT and SIGKILL when a job is stopped. */
      stopGraceMs: z.number().int().min(0).default(5000),
      /** How long a run's final pushes wait for its in-run pushes still in flight; other push workers take them after twice this. */
      finalPushWaitMs: z.number().int().min(0).default(10_000),
      executor,
      ivis: z.strictObject({
        trustedUrlBase: httpUrl,
        sandboxUrlBase: httpUrl,
        es: z.strictObject({ host: z.string().min(1), port }),
      }),
    });

  const scheduler = z
    .strictObject({
      admin: listen('127.0.0.1', 9329),
      heartbeatTimeoutMs: z.number().int().min(1000).default(15000),
      /** How often liveness and reconciliation run. */
      tickMs: z.number().int().min(100).default(5000),
      /** How often agents' admin endpoints are probed (the sync round). */
      syncIntervalMs: z.number().int().min(1000).default(30000),
      /** Final runs older than this are removed with their output. */
      retentionMs: z.number().int().min(60_000).default(7 * 86_400_000),
      /** The forwarder's trusted route, for pushes the RPS delivers itself (lost runs); null: derived from forwarder.routes.trusted. */
      trustedUrlBase: httpUrl.nullable().default(null),
    })
    .prefault({});

  const watchdog = z
    .strictObject({
      admin: listen('127.0.0.1', 9330),
      intervalMs: z.number().int().min(1000).default(60000),
      override: z
        .string()
        .refine((ip) => isIP(ip) !== 0, 'must be an IPv4 or IPv6 address')
        .nullable()
        .default(null),
      notify: z.array(httpUrl).default([]),
      /** Where the public address comes from: a network interface, an HTTP echo URL, or a command's stdout. */
      source: z
        .discriminatedUnion('kind', [
          z.strictObject({ kind: z.literal('interface'), name: z.string().min(1).nullable().default(null) }),
          z.strictObject({ kind: z.literal('http'), url: httpUrl }),
          z.strictObject({ kind: z.literal('command'), command: z.string().min(1) }),
        ])
        .default({ kind: 'interface', name: null }),
      /** Per-request timeout of a notification. */
      notifyTimeoutMs: z.number().int().min(100).default(5000),
    })
    .prefault({});

  const manager = z
    .strictObject({
      listen: listen('127.0.0.1', 9332),
      caDir: filePath.prefault('certs/ca'),
      /**
       * Bearer token of the admin API, CLI and dashboard (`RPS_MANAGER_TOKEN` overrides).
       * Null only parses: the manager refuses to start without a way to authenticate.
       */
      token: z.string().min(16, 'must be at least 16 characters').nullable().default(null),
      /**
       * HTTPS for the listener, and operators' client certificates as an alternative to the token:
       * a certificate of `ca` that `clients` names gets in without a bearer token. Null: plain HTTP.
       */
      tls: z
        .strictObject({
          cert: filePath,
          key: filePath,
          ca: filePath,
          clients: z.array(clientIdentitySchema).default([]),
        })
        .nullable()
        .default(null),
      /** What a machine's setup bundle tells its agent (docs/remote-manager.md, "Setup bundle"). */
      bundle: z
        .strictObject({
          /** Redis as the peers reach it; null: `redis.url`. A machine's own ACL user replaces the user part. */
          redisUrl: z
            .string()
            .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
            .nullable()
            .default(null),
          /** The forwarder's routes as the peers reach them (the agent's `ivis` section). */
          ivis: z
            .strictObject({
              trustedUrlBase: httpUrl.default('http://127.0.0.1:10329'),
              sandboxUrlBase: httpUrl.default('http://127.0.0.1:10330'),
              es: z
                .strictObject({ host: z.string().min(1).default('127.0.0.1'), port: port.default(10328) })
                .prefault({}),
            })
            .prefault({}),
        })
        .prefault({}),
      /** A removed machine's agent gets this long to finish its runs; then it is removed anyway (its runs end lost). */
      drainTimeoutMs: z.number().int().min(0).default(3_600_000),
      /** How often removals in progress and retention of removed machines are looked at. */
      sweepMs: z.number().int().min(100).default(5000),
      /** The dashboard (docs/remote-manager-dashboard.md). `actions`: token holders may act in bull-board (retry, clean, promote, remove); off, it is read-only. */
      dashboard: z.strictObject({ actions: z.boolean().default(false) }).prefault({}),
    })
    .prefault({});

  return { redis, log, gateway, forwarder, agent, scheduler, watchdog, manager };
}

type Sections = ReturnType<typeof createConfigSchema>;

/** The name of a service section of the config file (`redis` and `log` are always loaded). */
export type SectionName = Exclude<keyof Sections, 'redis' | 'log'>;

/** The parsed, validated value of one section. */
export type SectionConfig<K extends keyof Sections> = z.output<Sections[K]>;

/** What a service gets: `redis`, `log` and the sections it asked for, frozen. */
export type RpsConfig<K extends SectionName = never> = Readonly<
  { redis: SectionConfig<'redis'>; log: SectionConfig<'log'> } & { [S in K]: SectionConfig<S> }
>;
