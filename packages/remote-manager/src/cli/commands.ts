import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ApiClient, CliError, EXIT } from './api-client';
import { age, table } from './table';

/** Where the CLI writes and what it reads from the process (main.ts passes the real ones). */
export interface CliIo {
  env: Readonly<Record<string, string | undefined>>;
  stdout(text: string): void;
  stderr(text: string): void;
}

export const CLI_ENV = { url: 'RPS_MANAGER_URL', token: 'RPS_MANAGER_TOKEN' } as const;
const DEFAULT_URL = 'http://127.0.0.1:9332';

export const USAGE = `usage: rps <command> [options]   (--url URL --token TOKEN, or ${CLI_ENV.url} / ${CLI_ENV.token}; --json for scripts)
  peers                                   the pool's peers
  drain PEER | undrain PEER               the peer finishes its runs and takes no new ones / takes runs again
  runs [--state S] [--limit N]            the newest runs
  run ID                                  one run with its output tail
  queues                                  BullMQ queue depths
  machines [list]                         the registry
  machines show ID
  machines add --name N --address IP --type manual|rjr [--dnsname D] [--description T] [--capacity N]
               [--param key=value ...] [--parameters JSON] [--out DIR]
  machines bundle ID --out DIR            new credentials; writes the setup bundle's files
  machines rm ID                          drain, then remove
  ca init [--cn NAME] [--days N]
  ca import --cert ca.cert --key ca.pem   IVIS-core's CA files
  ca list
  ca issue --kind server|client --cn NAME [--ip IP ...] [--dns NAME ...] [--days N] [--out DIR]
  ca revoke SERIAL
  clients [list]                          allowed gateway clients added at runtime
  clients add NAME (--fingerprint FP | --serial S --issuer DN)
  clients rm NAME
exit codes: 0 ok, 1 the manager answered an error, 2 usage, 3 manager unreachable or token refused
`;

const OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  url: { type: 'string' },
  token: { type: 'string' },
  state: { type: 'string' },
  limit: { type: 'string' },
  out: { type: 'string' },
  name: { type: 'string' },
  address: { type: 'string' },
  type: { type: 'string' },
  dnsname: { type: 'string' },
  description: { type: 'string' },
  capacity: { type: 'string' },
  param: { type: 'string', multiple: true },
  parameters: { type: 'string' },
  cn: { type: 'string' },
  days: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  kind: { type: 'string' },
  ip: { type: 'string', multiple: true },
  dns: { type: 'string', multiple: true },
  fingerprint: { type: 'string' },
  serial: { type: 'string' },
  issuer: { type: 'string' },
} as const;

type Options = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

interface Ctx {
  api: ApiClient;
  opts: Options;
  args: string[];
  io: CliIo;
}

const usage = (message: string) => new CliError(EXIT.usage, `${message}\n${USAGE}`);

function need(value: string | undefined, what: string): string {
  if (value === undefined || value === '') throw usage(`missing ${what}`);
  return value;
}

function integer(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw usage(`${what} must be a whole number`);
  return Number(value);
}

/** `--param key=value`: numbers, booleans and JSON literals are parsed, anything else stays text. */
function parameters(opts: Options): Record<string, unknown> {
  let out: Record<string, unknown> = {};
  if (opts.parameters !== undefined) {
    try {
      out = JSON.parse(opts.parameters) as Record<string, unknown>;
    } catch {
      throw usage('--parameters must be a JSON object');
    }
  }
  for (const pair of opts.param ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usage(`--param ${pair}: expected key=value`);
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // plain text
    }
    out[pair.slice(0, eq)] = value;
  }
  return out;
}

interface BundleFile {
  name: string;
  mode: string;
  content: string;
}

function writeFiles(dir: string, files: BundleFile[], io: CliIo): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const f of files) {
    if (path.basename(f.name) !== f.name) throw new CliError(EXIT.apiError, `refusing file name ${f.name}`);
    const file = path.join(dir, f.name);
    const mode = parseInt(f.mode, 8);
    fs.writeFileSync(file, f.content, { mode });
    fs.chmodSync(file, mode); // an existing file keeps its old mode otherwise
    io.stderr(`wrote ${file} (${f.mode})\n`); // stderr: stdout stays the answer (JSON with --json)
  }
}

function print(ctx: Ctx, data: unknown, human: () => string): void {
  ctx.io.stdout(ctx.opts.json ? `${JSON.stringify(data, null, 2)}\n` : human());
}

type Row = Record<string, unknown>;
const rows = (data: unknown, key: string) => ((data as Row)[key] ?? []) as Row[];

async function peers(ctx: Ctx) {
  const data = await ctx.api.request('GET', '/api/peers');
  print(ctx, data, () =>
    table(
      ['peer', 'state', 'address', 'running', 'capacity', 'drained', 'heartbeat'],
      rows(data, 'peers').map((p) => [
        p.id,
        p.state,
        p.address,
        p.running,
        p.capacity,
        p.drained,
        age(p.lastHeartbeat as string | null),
      ]),
    ),
  );
}

async function peerCommand(ctx: Ctx, command: 'drain' | 'undrain') {
  const peer = need(ctx.args[1], 'PEER');
  const data = await ctx.api.request<Row>('POST', `/api/peers/${encodeURIComponent(peer)}/${command}`);
  print(ctx, data, () =>
    data.acknowledged
      ? `${peer}: ${command} ${data.ok ? 'done' : 'refused'}: ${String(data.message)}\n`
      : `${peer}: ${command} queued; the agent carries it out when it reads its control stream\n`,
  );
  if (data.acknowledged && data.ok === false)
    throw new CliError(EXIT.apiError, `${peer}: ${command} refused`);
}

async function runs(ctx: Ctx) {
  const query = new URLSearchParams();
  if (ctx.opts.state) query.set('state', ctx.opts.state);
  if (ctx.opts.limit) query.set('limit', String(integer(ctx.opts.limit, '--limit')));
  const data = await ctx.api.request('GET', `/api/runs${query.size ? `?${query.toString()}` : ''}`);
  print(ctx, data, () =>
    table(
      ['run', 'state', 'peer', 'task', 'updated'],
      rows(data, 'runs').map((r) => [r.runId, r.state, r.peerId, r.taskId, r.updatedAt]),
    ),
  );
}

async function run(ctx: Ctx) {
  const id = need(ctx.args[1], 'run ID');
  const data = await ctx.api.request<{ run: Row; outputTail: string }>(
    'GET',
    `/api/runs/${encodeURIComponent(id)}`,
  );
  print(ctx, data, () => {
    const r = data.run;
    const fields = [
      'runId',
      'state',
      'peerId',
      'taskId',
      'execution',
      'createdAt',
      'updatedAt',
      'startedAt',
      'finishedAt',
      'error',
      'reason',
    ];
    const head = table(
      ['field', 'value'],
      fields.map((f) => [f, r[f]]),
    );
    return `${head}--- output (tail) ---\n${data.outputTail}${data.outputTail.endsWith('\n') || !data.outputTail ? '' : '\n'}`;
  });
}

async function queues(ctx: Ctx) {
  const data = await ctx.api.request('GET', '/api/queues');
  print(ctx, data, () =>
    table(
      ['queue', 'waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed', 'paused'],
      rows(data, 'queues').map((q) => [
        q.name,
        q.waiting,
        q.active,
        q.delayed,
        q.prioritized,
        q.completed,
        q.failed,
        q.paused,
      ]),
    ),
  );
}

function machineTable(list: Row[]): string {
  return table(
    ['machine', 'name', 'type', 'state', 'address', 'capacity', 'heartbeat'],
    list.map((mc) => [
      mc.id,
      mc.name,
      mc.type,
      mc.state,
      mc.address,
      mc.capacity,
      age(mc.lastHeartbeat as string | null),
    ]),
  );
}

async function machines(ctx: Ctx) {
  const sub = ctx.args[1] ?? 'list';
  const id = () => encodeURIComponent(need(ctx.args[2], 'machine ID'));
  switch (sub) {
    case 'list': {
      const data = await ctx.api.request('GET', '/api/machines');
      return print(ctx, data, () => machineTable(rows(data, 'machines')));
    }
    case 'show': {
      const data = await ctx.api.request<{ machine: Row }>('GET', `/api/machines/${id()}`);
      return print(ctx, data, () => machineTable([data.machine]));
    }
    case 'add': {
      const body = {
        name: need(ctx.opts.name, '--name'),
        address: need(ctx.opts.address, '--address'),
        type: need(ctx.opts.type, '--type'),
        ...(ctx.opts.dnsname ? { dnsname: ctx.opts.dnsname } : {}),
        ...(ctx.opts.description ? { description: ctx.opts.description } : {}),
        ...(ctx.opts.capacity ? { capacity: integer(ctx.opts.capacity, '--capacity') } : {}),
        parameters: parameters(ctx.opts),
      };
      const data = await ctx.api.request<{ machine: Row; bundle: { files: BundleFile[] } }>(
        'POST',
        '/api/machines',
        body,
      );
      if (ctx.opts.out) writeFiles(ctx.opts.out, data.bundle.files, ctx.io);
      return print(
        ctx,
        ctx.opts.out ? { machine: data.machine } : data,
        () =>
          machineTable([data.machine]) +
          (ctx.opts.out ? '' : 'no --out DIR: bundle not written (rps machines bundle ID --out DIR)\n'),
      );
    }
    case 'bundle': {
      const machine = id();
      const out = need(ctx.opts.out, '--out DIR');
      const data = await ctx.api.request<{ bundle: { files: BundleFile[] } }>(
        'GET',
        `/api/machines/${machine}/bundle`,
      );
      writeFiles(out, data.bundle.files, ctx.io);
      return;
    }
    case 'rm': {
      const data = await ctx.api.request<{ machine: Row }>('DELETE', `/api/machines/${id()}`);
      return print(ctx, data, () =>
        data.machine.state === 'removed'
          ? `${String(data.machine.id)}: removed\n`
          : `${String(data.machine.id)}: draining; removed once its runs are done\n`,
      );
    }
    default:
      throw usage(`unknown machines command ${sub}`);
  }
}

function certificateTable(list: Row[]): string {
  return table(
    ['serial', 'kind', 'cn', 'sans', 'not after', 'revoked'],
    list.map((c) => [
      c.serial,
      c.kind,
      c.commonName,
      [...((c.ips as string[]) ?? []), ...((c.dnsNames as string[]) ?? [])].join(','),
      c.notAfter,
      c.revoked,
    ]),
  );
}

async function ca(ctx: Ctx) {
  const sub = ctx.args[1];
  switch (sub) {
    case 'init': {
      const body = {
        ...(ctx.opts.cn ? { commonName: ctx.opts.cn } : {}),
        ...(ctx.opts.days ? { validityDays: integer(ctx.opts.days, '--days') } : {}),
      };
      const data = await ctx.api.request<{ certificate: Row | null }>('POST', '/api/ca/init', body);
      return print(ctx, data, () =>
        data.certificate ? certificateTable([data.certificate]) : 'CA created\n',
      );
    }
    case 'import': {
      const read = (file: string | undefined, what: string) => {
        try {
          return fs.readFileSync(need(file, what), 'utf8');
        } catch (err) {
          if (err instanceof CliError) throw err;
          throw usage(`${what}: cannot read ${file}: ${(err as Error).message}`);
        }
      };
      const body = { caCertPem: read(ctx.opts.cert, '--cert'), caKeyPem: read(ctx.opts.key, '--key') };
      const data = await ctx.api.request<{ certificate: Row | null }>('POST', '/api/ca/import', body);
      return print(ctx, data, () =>
        data.certificate ? certificateTable([data.certificate]) : 'CA imported\n',
      );
    }
    case 'list': {
      const data = await ctx.api.request('GET', '/api/certificates');
      return print(ctx, data, () => certificateTable(rows(data, 'certificates')));
    }
    case 'issue': {
      const body = {
        kind: need(ctx.opts.kind, '--kind'),
        commonName: need(ctx.opts.cn, '--cn'),
        ips: ctx.opts.ip ?? [],
        dnsNames: ctx.opts.dns ?? [],
        ...(ctx.opts.days ? { validityDays: integer(ctx.opts.days, '--days') } : {}),
      };
      const data = await ctx.api.request<{ info: Row; certPem: string; keyPem: string; caPem: string }>(
        'POST',
        '/api/certificates',
        body,
      );
      if (ctx.opts.out) {
        writeFiles(
          ctx.opts.out,
          [
            { name: 'cert.pem', mode: '0644', content: data.certPem },
            { name: 'key.pem', mode: '0600', content: data.keyPem },
            { name: 'ca.cert', mode: '0644', content: data.caPem },
          ],
          ctx.io,
        );
        return print(ctx, { info: data.info }, () => certificateTable([data.info]));
      }
      return print(ctx, data, () => `${certificateTable([data.info])}${data.certPem}${data.keyPem}`);
    }
    case 'revoke': {
      const serial = encodeURIComponent(need(ctx.args[2], 'SERIAL'));
      const data = await ctx.api.request<Row>('POST', `/api/certificates/${serial}/revoke`);
      return print(ctx, data, () => certificateTable([data]));
    }
    default:
      throw usage(sub ? `unknown ca command ${sub}` : 'missing ca command');
  }
}

async function clients(ctx: Ctx) {
  const sub = ctx.args[1] ?? 'list';
  switch (sub) {
    case 'list': {
      const data = await ctx.api.request('GET', '/api/clients');
      return print(ctx, data, () =>
        table(
          ['name', 'fingerprint256', 'serial', 'issuer', 'problem'],
          rows(data, 'clients').map((c) => [c.name, c.fingerprint256, c.serial, c.issuer, c.problem]),
        ),
      );
    }
    case 'add': {
      const name = need(ctx.args[2], 'NAME');
      const body = ctx.opts.fingerprint
        ? { name, fingerprint256: ctx.opts.fingerprint }
        : {
            name,
            serial: need(ctx.opts.serial, '--fingerprint or --serial'),
            issuer: need(ctx.opts.issuer, '--issuer'),
          };
      const data = await ctx.api.request<{ created: boolean }>('POST', '/api/clients', body);
      return print(ctx, data, () => `${name}: ${data.created ? 'added' : 'replaced'}\n`);
    }
    case 'rm': {
      const name = need(ctx.args[2], 'NAME');
      const data = await ctx.api.request('DELETE', `/api/clients/${encodeURIComponent(name)}`);
      return print(ctx, data, () => `${name}: removed\n`);
    }
    default:
      throw usage(`unknown clients command ${sub}`);
  }
}

const COMMANDS: Record<string, (ctx: Ctx) => Promise<void>> = {
  peers,
  drain: (ctx) => peerCommand(ctx, 'drain'),
  undrain: (ctx) => peerCommand(ctx, 'undrain'),
  runs,
  run,
  queues,
  machines,
  ca,
  clients,
};

/** Runs one `rps` command line; resolves with the exit code (never throws). */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
    } catch (err) {
      throw usage((err as Error).message);
    }
    const { values: opts, positionals: args } = parsed;
    if (opts.help || args.length === 0) {
      io.stdout(USAGE);
      return opts.help ? EXIT.ok : EXIT.usage;
    }
    const command = COMMANDS[args[0] ?? ''];
    if (!command) throw usage(`unknown command ${args[0]}`);
    const token = opts.token ?? io.env[CLI_ENV.token];
    if (!token) throw usage(`no token: give --token or set ${CLI_ENV.token}`);
    const api = new ApiClient(opts.url ?? io.env[CLI_ENV.url] ?? DEFAULT_URL, token);
    await command({ api, opts, args, io });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr(`rps: ${err.message}${err.message.endsWith('\n') ? '' : '\n'}`);
      return err.exitCode;
    }
    io.stderr(`rps: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.apiError;
  }
}
