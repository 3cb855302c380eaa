import { appError, type Logger } from '@rps/common';
import { ZodError } from 'zod';
import type { CreateMachineInput } from '../routes/api.schemas';
import type { MachineStore, StoredMachine } from '../stores/machine.store';
import type { PeerView, PoolViewStore } from '../stores/pool-view.store';
import { buildBundle, withRedisUser, type BundleInput, type SetupBundle } from './bundle.service';
import type { CertificatesService } from './certificates.service';
import type { MachineTypeManager, MachineSpec, PoolOps } from './type-managers/type-manager';

/** Per-machine Redis users (helper B's PeerRedisUsers); null: bundles carry `manager.bundle.redisUrl` as it is. */
export interface PeerCredentials {
  create(machineId: string): Promise<{ username: string; password: string }>;
  remove(machineId: string): Promise<void>;
}

/** A machine as the API shows it: the registry's record joined with its peer. */
export interface MachineView {
  id: string;
  name: string;
  description: string;
  address: string;
  dnsname: string | null;
  type: string;
  parameters: Record<string, unknown>;
  state: 'provisioned' | 'active' | 'draining' | 'stopped' | 'lost' | 'removing' | 'removed';
  capacity: number | null;
  lastHeartbeat: string | null;
  peer: ReturnType<typeof peerSummary> | null;
  certificateSerial: string | null;
  createdAt: string;
  removedAt: string | null;
}

export interface MachinesServiceDeps {
  store: MachineStore;
  pool: PoolViewStore;
  poolOps: PoolOps;
  types: ReadonlyMap<string, MachineTypeManager<unknown>>;
  certificates: CertificatesService;
  credentials: PeerCredentials | null;
  bundle: { redisUrl: string; prefix: string; ivis: BundleInput['ivis'] };
  drainTimeoutMs: number;
  retentionMs: number;
  logger: Logger;
  now?: () => number;
}

const PEER_STATES = new Set(['active', 'draining', 'stopped', 'lost', 'removed']);

/** A peer as the API shows it. */
export function peerSummary(peer: PeerView) {
  return {
    id: peer.id,
    state: peer.state || 'unknown',
    address: peer.address,
    capacity: peer.capacity,
    running: peer.running,
    lastHeartbeat: peer.heartbeatAt > 0 ? new Date(peer.heartbeatAt).toISOString() : null,
    drained: peer.drain,
    executor: peer.executor,
    version: peer.version,
  };
}

function slug(name: string): string {
  const text = name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return text.slice(0, 64) || 'machine';
}

/** The registry of machines: create (credentials + bundle), list, re-issue, remove (drain, then remove). */
export class MachinesService {
  private readonly now: () => number;

  constructor(private readonly deps: MachinesServiceDeps) {
    this.now = deps.now ?? Date.now;
  }

  private type(name: string): MachineTypeManager<unknown> {
    const type = this.deps.types.get(name);
    if (!type) {
      throw appError('invalid_request', `unknown machine type ${JSON.stringify(name)}`, [
        { path: 'type', message: `must be one of ${[...this.deps.types.keys()].join(', ')}` },
      ]);
    }
    return type;
  }

  private spec(machine: StoredMachine, type: MachineTypeManager<unknown>): MachineSpec<unknown> {
    const parsed = type.parameters.safeParse(machine.parameters);
    if (!parsed.success) {
      throw new ZodError(parsed.error.issues.map((i) => ({ ...i, path: ['parameters', ...i.path] })));
    }
    return { ...machine, parameters: parsed.data };
  }

  private view(machine: StoredMachine, peer: PeerView | null): MachineView {
    const live = machine.state === 'provisioned' && peer && PEER_STATES.has(peer.state) ? peer.state : null;
    return {
      id: machine.id,
      name: machine.name,
      description: machine.description,
      address: machine.address,
      dnsname: machine.dnsname,
      type: machine.type,
      parameters: machine.parameters,
      state: (live ?? machine.state) as MachineView['state'],
      capacity: peer?.capacity ?? machine.capacity,
      lastHeartbeat: peer && peer.heartbeatAt > 0 ? new Date(peer.heartbeatAt).toISOString() : null,
      peer: peer ? peerSummary(peer) : null,
      certificateSerial: machine.certSerial,
      createdAt: new Date(machine.createdAt).toISOString(),
      removedAt: machine.removedAt === null ? null : new Date(machine.removedAt).toISOString(),
    };
  }

  async list(): Promise<MachineView[]> {
    const [machines, peers] = await Promise.all([this.deps.store.list(), this.deps.pool.peers()]);
    const byId = new Map(peers.map((p) => [p.id, p]));
    return machines.map((m) => this.view(m, byId.get(m.id) ?? null));
  }

  private async stored(id: string): Promise<StoredMachine> {
    const machine = await this.deps.store.get(id);
    if (!machine) throw appError('machine_not_found', `no machine ${id}`);
    return machine;
  }

  async get(id: string): Promise<MachineView> {
    const machine = await this.stored(id);
    return this.view(machine, await this.deps.pool.peer(id));
  }

  /** Registers a machine, issues its certificate and Redis user, and returns its setup bundle. */
  async create(input: CreateMachineInput): Promise<{ machine: MachineView; bundle: SetupBundle }> {
    const type = this.type(input.type);
    const stored: StoredMachine = {
      id: input.id ?? slug(input.name),
      name: input.name,
      description: input.description,
      address: input.address,
      dnsname: input.dnsname ?? null,
      type: input.type,
      parameters: {},
      capacity: input.capacity ?? null,
      state: 'provisioned',
      createdAt: this.now(),
      removingSince: null,
      removedAt: null,
      certSerial: null,
    };
    const spec = this.spec({ ...stored, parameters: input.parameters }, type);
    stored.parameters = spec.parameters as Record<string, unknown>;
    type.createRemoteMachine(spec); // a type that refuses the machine does so before anything is stored
    await this.deps.certificates.current();
    const created = await this.deps.store.create(stored);
    if (created === 'name_taken') throw appError('machine_name_taken', `a machine is named ${input.name}`);
    if (created === 'id_taken') {
      throw appError('machine_name_taken', `machine id ${stored.id} is taken (give another name or id)`, [
        { path: 'id', message: 'taken' },
      ]);
    }
    let bundle: SetupBundle;
    try {
      bundle = await this.issueBundle(stored, type);
    } catch (err) {
      // No half-made machine: without its certificate and credentials it could never join.
      const serial = (await this.deps.store.get(stored.id))?.certSerial;
      if (serial) await this.revokeQuietly(stored.id, serial);
      await this.deps.store.delete(stored.id);
      await this.deps.credentials?.remove(stored.id).catch(() => undefined);
      throw err;
    }
    this.deps.logger.info({ machine: stored.id, type: stored.type }, 'machine created');
    return { machine: await this.get(stored.id), bundle };
  }

  /** Issues a new certificate and Redis password for the machine and returns its bundle. */
  async bundle(id: string): Promise<SetupBundle> {
    const machine = await this.stored(id);
    if (machine.state !== 'provisioned')
      throw appError('machine_removed', `machine ${id} is ${machine.state}`);
    return this.issueBundle(machine, this.type(machine.type));
  }

  private async issueBundle(machine: StoredMachine, type: MachineTypeManager<unknown>): Promise<SetupBundle> {
    const spec = this.spec(machine, type);
    const issued = await this.deps.certificates.issue({
      kind: 'server',
      commonName: machine.id,
      ips: [machine.address],
      dnsNames: machine.dnsname ? [machine.dnsname] : [],
    });
    const previous = machine.certSerial;
    await this.deps.store.update(machine.id, { certSerial: issued.info.serial });
    if (previous && previous !== issued.info.serial) await this.revokeQuietly(machine.id, previous);
    const credentials = this.deps.credentials ? await this.deps.credentials.create(machine.id) : null;
    return buildBundle({
      machineId: machine.id,
      address: machine.address,
      capacity: machine.capacity,
      agent: type.createRemoteMachine(spec),
      redisUrl: withRedisUser(this.deps.bundle.redisUrl, credentials),
      prefix: this.deps.bundle.prefix,
      ivis: this.deps.bundle.ivis,
      certPem: issued.certPem,
      keyPem: issued.keyPem,
      caPem: issued.caPem,
    });
  }

  private async revokeQuietly(machineId: string, serial: string): Promise<void> {
    try {
      await this.deps.certificates.revoke(serial);
    } catch (err) {
      this.deps.logger.warn({ machine: machineId, serial, err: String(err) }, 'certificate not revoked');
    }
  }

  /**
   * Starts removing a machine: its agent drains (finishes its runs, takes no
   * new ones); once it holds no runs, or `drainTimeoutMs` passed, the peer is
   * removed (see {@link sweep}). Idempotent.
   */
  async remove(id: string): Promise<MachineView> {
    const machine = await this.stored(id);
    if (machine.state === 'provisioned') {
      const type = this.type(machine.type);
      await this.deps.store.update(id, { state: 'removing', removingSince: this.now() });
      if (await this.deps.pool.peer(id))
        await type.remoteRunCleanup(this.spec(machine, type), this.deps.poolOps);
      this.deps.logger.info({ machine: id }, 'machine removal started');
      await this.advance({ ...machine, state: 'removing', removingSince: this.now() });
    }
    return this.get(id);
  }

  /** One step of a removal in progress, or of a removed machine's retention. */
  private async advance(machine: StoredMachine): Promise<void> {
    const now = this.now();
    if (machine.state === 'removing') {
      const runs = await this.deps.pool.peerRunCount(machine.id);
      const timedOut = now - (machine.removingSince ?? now) >= this.deps.drainTimeoutMs;
      if (runs > 0 && !timedOut) return;
      await this.deps.pool.peerAdmin.remove(machine.id, now);
      await this.deps.credentials?.remove(machine.id);
      if (machine.certSerial) await this.revokeQuietly(machine.id, machine.certSerial);
      await this.deps.store.update(machine.id, { state: 'removed', removedAt: now });
      this.deps.logger.info({ machine: machine.id, runsLeft: runs }, 'machine removed');
    } else if (machine.state === 'removed') {
      // The peer's records are pruned by scheduler-sync's retention; the machine's follow them.
      const expired = now - (machine.removedAt ?? now) >= this.deps.retentionMs;
      if (expired && !(await this.deps.pool.peer(machine.id))) {
        await this.deps.store.delete(machine.id);
        this.deps.logger.info({ machine: machine.id }, 'removed machine pruned');
      }
    }
  }

  /** Moves every removal along (called every `manager.sweepMs`). */
  async sweep(): Promise<void> {
    for (const machine of await this.deps.store.list()) {
      if (machine.state !== 'provisioned') await this.advance(machine);
    }
  }
}
