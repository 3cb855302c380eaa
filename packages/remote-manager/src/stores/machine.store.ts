import path from 'node:path';
import { loadLuaScript, type RedisKeys } from '@rps/common';
import type { Redis } from 'ioredis';
import { z } from 'zod';

const LUA_DIR = path.join(__dirname, '../../lua');
const CREATE = loadLuaScript(LUA_DIR, 'machine-create');
const DELETE = loadLuaScript(LUA_DIR, 'machine-delete');
const UPDATE = loadLuaScript(LUA_DIR, 'machine-update');

interface MachineScripts {
  rpsMachineCreate(...args: Array<string | number>): Promise<string>;
  rpsMachineDelete(...args: Array<string | number>): Promise<number>;
  rpsMachineUpdate(...args: Array<string | number>): Promise<number>;
}

/**
 * What the registry itself knows of a machine's life (the live state comes
 * from the peer record of the same id): `provisioned` until removal starts,
 * `removing` while its agent drains, `removed` once its peer is removed.
 */
export const STORED_MACHINE_STATES = ['provisioned', 'removing', 'removed'] as const;
export type StoredMachineState = (typeof STORED_MACHINE_STATES)[number];

const optionalNumber = z.preprocess(
  (v) => (v === '' || v === undefined ? null : v),
  z.coerce.number().int().nullable(),
);
const optionalString = z.preprocess((v) => (v === '' || v === undefined ? null : v), z.string().nullable());

/** The machine hash at `keys.machine(id)`, parsed (values are strings in Redis). */
export const storedMachineSchema = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  description: z.string().default(''),
  address: z.string().min(1),
  dnsname: optionalString,
  type: z.string().min(1),
  parameters: z.string().transform((text, ctx) => {
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'parameters is not JSON' });
      return z.NEVER;
    }
  }),
  capacity: optionalNumber,
  state: z.enum(STORED_MACHINE_STATES),
  createdAt: z.coerce.number().int(),
  removingSince: optionalNumber,
  removedAt: optionalNumber,
  certSerial: optionalString,
});
export type StoredMachine = z.output<typeof storedMachineSchema>;

function toHash(machine: Partial<StoredMachine>): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(machine)) {
    if (value === undefined) continue;
    const text =
      typeof value === 'object' && value !== null
        ? JSON.stringify(value)
        : value === null
          ? ''
          : String(value);
    out.push(key, text);
  }
  return out;
}

/** The registry of machines in Redis (keys.machine, keys.machines, keys.machineNames). */
export class MachineStore {
  private readonly scripts: MachineScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {
    if (!('rpsMachineCreate' in redis)) redis.defineCommand('rpsMachineCreate', CREATE);
    if (!('rpsMachineDelete' in redis)) redis.defineCommand('rpsMachineDelete', DELETE);
    if (!('rpsMachineUpdate' in redis)) redis.defineCommand('rpsMachineUpdate', UPDATE);
    this.scripts = redis as unknown as MachineScripts;
  }

  /** Adds a machine unless its id or name is taken. */
  async create(machine: StoredMachine): Promise<'ok' | 'id_taken' | 'name_taken'> {
    const k = this.keys;
    const result = await this.scripts.rpsMachineCreate(
      k.machines(),
      k.machine(machine.id),
      k.machineNames(),
      machine.id,
      machine.name,
      machine.createdAt,
      ...toHash(machine),
    );
    return result as 'ok' | 'id_taken' | 'name_taken';
  }

  async get(id: string): Promise<StoredMachine | null> {
    const hash = await this.redis.hgetall(this.keys.machine(id));
    return parse(hash);
  }

  /** Every machine, oldest first (malformed hashes are skipped). */
  async list(): Promise<StoredMachine[]> {
    const ids = await this.redis.zrange(this.keys.machines(), 0, -1);
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.machine(id));
    const results = (await pipeline.exec()) ?? [];
    const out: StoredMachine[] = [];
    for (const [err, value] of results) {
      if (err) throw err;
      const machine = parse(value as Record<string, string>);
      if (machine) out.push(machine);
    }
    return out;
  }

  /** Changes fields of an existing machine (no-op for an unknown one). */
  async update(id: string, fields: Partial<Omit<StoredMachine, 'id' | 'name'>>): Promise<void> {
    const pairs = toHash(fields);
    if (pairs.length > 0) await this.scripts.rpsMachineUpdate(this.keys.machine(id), ...pairs);
  }

  /** Deletes the machine's records; true when there were some. */
  async delete(id: string): Promise<boolean> {
    const k = this.keys;
    return (await this.scripts.rpsMachineDelete(k.machines(), k.machine(id), k.machineNames(), id)) === 1;
  }
}

function parse(hash: Record<string, string>): StoredMachine | null {
  if (Object.keys(hash).length === 0) return null;
  const parsed = storedMachineSchema.safeParse(hash);
  return parsed.success ? parsed.data : null;
}
