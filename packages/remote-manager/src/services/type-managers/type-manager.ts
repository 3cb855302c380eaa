import type { z } from 'zod';

/** A machine as its type manager sees it (parameters already validated by the type's schema). */
export interface MachineSpec<P> {
  id: string;
  name: string;
  address: string;
  dnsname: string | null;
  capacity: number | null;
  parameters: P;
}

/** What a type decides of its agent's config file: the `agent` section's type-specific keys. */
export interface AgentPart {
  /** The agent's `executor` section (validated with the config schema when the bundle is built). */
  executor: Record<string, unknown>;
  /** The agent's admin listener (scheduler-sync probes it); default 127.0.0.1:9331. */
  admin?: { host: string; port: number };
  /** Extra keys of the `agent` section (heartbeatIntervalMs, maxOutputBytes, ...). */
  extra?: Record<string, unknown>;
}

/** How runs reach a machine of this type, for operators (the RPS never pushes a run: agents pull). */
export interface DispatchInfo {
  /** The BullMQ queue its agent takes runs from. */
  queue: string;
  /** Runs at once (the agent's `capacity`). */
  capacity: number;
  /** Where the agent hands a run to, e.g. "builtin executor" or the job runner's URL. */
  executes: string;
}

/** What the pool offers a type manager for its run-level duties (built on common's PeerAdmin and the run records). */
export interface PoolOps {
  /** The run's state as the RPS knows it, if the machine's peer holds or held it. */
  runState(peerId: string, runId: number): Promise<{ state: string; execution: number } | null>;
  /** Puts a command on the peer's durable control stream. */
  sendStop(peerId: string, runId: number, execution: number): Promise<void>;
  sendDrain(peerId: string): Promise<void>;
}

/**
 * One kind of machine (IVIS-core's executor types, adapted to a pool). The
 * seed's five duties and what they mean here, where the machine's agent
 * registers itself as a peer and pulls runs from the queue:
 * - `createRemoteMachine`: what the machine's agent must be told (its executor
 *   section); the manager adds credentials, certificate and addresses and
 *   returns the setup bundle. Nothing is provisioned remotely.
 * - `dispatchJobToRemoteMachine`: the agent takes runs itself within its
 *   capacity, so the manager dispatches nothing; this says how runs reach it.
 * - `getRunStatus`: the run's state as recorded by the RPS for this machine.
 * - `stopRemoteRun`: a durable stop command on the peer's control stream (the
 *   gateway does the same for IVIS-core's stops; the agent acknowledges).
 * - `remoteRunCleanup`: the machine is being removed: take no new runs and let
 *   the current ones finish (drain); the manager removes the peer when its
 *   runs are done or `manager.drainTimeoutMs` passed (runs left end `lost`).
 *
 * A new type is one file calling {@link defineMachineType} plus one line in
 * `type-registry.ts`.
 */
export interface MachineTypeManager<P = Record<string, unknown>> {
  readonly type: string;
  readonly summary: string;
  /** Validates (and defaults) the machine's `parameters`. */
  readonly parameters: z.ZodType<P>;
  createRemoteMachine(machine: MachineSpec<P>): AgentPart;
  dispatchJobToRemoteMachine(machine: MachineSpec<P>): DispatchInfo;
  getRunStatus(machine: MachineSpec<P>, runId: number, pool: PoolOps): Promise<{ state: string } | null>;
  stopRemoteRun(machine: MachineSpec<P>, runId: number, pool: PoolOps): Promise<boolean>;
  remoteRunCleanup(machine: MachineSpec<P>, pool: PoolOps): Promise<void>;
}

/** The parts a type must write itself; the run-level duties default to those every agent-backed machine shares. */
export type MachineTypeDefinition<P> = Pick<
  MachineTypeManager<P>,
  'type' | 'summary' | 'parameters' | 'createRemoteMachine'
> &
  Partial<Omit<MachineTypeManager<P>, 'type' | 'summary' | 'parameters' | 'createRemoteMachine'>>;

/** Builds a type manager, filling in the duties the definition leaves out. */
export function defineMachineType<P>(definition: MachineTypeDefinition<P>): MachineTypeManager<P> {
  return {
    dispatchJobToRemoteMachine(machine) {
      const executor = definition.createRemoteMachine(machine).executor;
      return {
        queue: 'runs',
        capacity: machine.capacity ?? 2,
        executes:
          typeof executor.url === 'string'
            ? `${String(executor.kind)} ${executor.url}`
            : String(executor.kind),
      };
    },
    async getRunStatus(machine, runId, pool) {
      return pool.runState(machine.id, runId);
    },
    async stopRemoteRun(machine, runId, pool) {
      const run = await pool.runState(machine.id, runId);
      if (!run) return false;
      await pool.sendStop(machine.id, runId, run.execution);
      return true;
    },
    async remoteRunCleanup(machine, pool) {
      await pool.sendDrain(machine.id);
    },
    ...definition,
  };
}
