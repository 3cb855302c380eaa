import path from 'node:path';
import type { Redis } from 'ioredis';
import { runRecordSchema, type RunRecord } from '../contracts/run.contract';
import type { RedisKeys } from '../redis/keys';
import { loadLuaScript } from '../redis/lua';
import { FINAL_STATES, statesAllowing, transition, type RunEvent, type RunState } from './run-state';

const LUA_DIR = path.join(__dirname, '../../lua');
const SCRIPTS = ['run-submit', 'run-apply', 'run-append-output', 'run-mark-running'].map((name) =>
  loadLuaScript(LUA_DIR, name),
);

interface RunScripts {
  rpsRunSubmit(...args: Array<string | Buffer | number>): Promise<[string, string, string]>;
  rpsRunApply(...args: Array<string | number>): Promise<[number, string, string]>;
  rpsRunAppendOutput(...args: Array<string | number>): Promise<number>;
  rpsRunMarkRunning(...args: Array<string | number>): Promise<number>;
}

/** What {@link RunStore.submit} did. */
export interface SubmitResult {
  /** `existing`: the run is live and nothing changed (an idempotent retry). */
  outcome: 'created' | 'resubmitted' | 'existing';
  execution: number;
  state: RunState;
}

/** Conditions and side data of {@link RunStore.apply}. */
export interface ApplyOptions {
  /** Only apply to this execution (a late event of an older execution is dropped). */
  execution?: number;
  /** The peer acting: for `dispatch` it becomes the owner; for other events the owner must match. */
  peerId?: string;
  /** Extra record fields to set in the same step. */
  fields?: Partial<Pick<RunRecord, 'startedAt' | 'finishedAt' | 'error' | 'reason' | 'phase'>>;
  now?: number;
}

/** The outcome of {@link RunStore.apply}. */
export type ApplyResult =
  { ok: true; state: RunState; execution: number } | { ok: false; reason: string; state: RunState | null };

/**
 * The one place a run's record changes. Every change goes through the state
 * machine of `run-state.ts` as an atomic compare-and-set in Redis, so two
 * processes racing on a run (an agent starting it, the gateway stopping it,
 * the scheduler declaring its peer lost) cannot both win.
 */
export class RunStore {
  private readonly scripts: RunScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {
    for (const script of SCRIPTS) {
      const command = `rps${script.name.replace(/(^|-)(\w)/g, (_m, _d, c: string) => c.toUpperCase())}`;
      if (!(command in redis)) redis.defineCommand(command, script);
    }
    this.scripts = redis as unknown as RunScripts;
  }

  /** The run's record, or null when there is none (never submitted, or deleted). */
  async get(runId: number): Promise<RunRecord | null> {
    const hash = await this.redis.hgetall(this.keys.run(runId));
    if (Object.keys(hash).length === 0) return null;
    return runRecordSchema.parse(hash);
  }

  /** The request body exactly as IVIS-core sent it, or null. */
  async request(runId: number): Promise<Buffer | null> {
    return this.redis.getBuffer(this.keys.runRequest(runId));
  }

  /** The run's output so far ('' when none). */
  async output(runId: number): Promise<string> {
    return (await this.redis.get(this.keys.runOutput(runId))) ?? '';
  }

  /**
   * Records a submitted run (state `queued`), or recognises a retry of a live
   * one. A final run starts a new execution with a fresh record and output.
   */
  async submit(runId: number, body: Buffer, meta: { taskId: number; jobId: number }, now = Date.now()) {
    const [outcome, execution, state] = await this.scripts.rpsRunSubmit(
      this.keys.run(runId),
      this.keys.runRequest(runId),
      this.keys.runOutput(runId),
      this.keys.runIndex(),
      String(runId),
      body,
      String(meta.taskId),
      String(meta.jobId),
      String(now),
      FINAL_STATES.join(','),
    );
    return { outcome, execution: Number(execution), state } as SubmitResult;
  }

  /** Applies a state machine event to a run, atomically, if it is legal now. */
  async apply(runId: number, event: RunEvent, options: ApplyOptions = {}): Promise<ApplyResult> {
    const from = statesAllowing(event);
    const sample = from[0];
    const to = sample === undefined ? undefined : transition(sample, event);
    if (!to?.ok) return { ok: false, reason: `event ${event} applies to no state`, state: null };
    const acting = options.peerId ?? '';
    const setPeer = event === 'dispatch' ? acting : event === 'requeue' ? '' : '-';
    const peerOp = event === 'dispatch' ? 'add' : to.to === 'running' ? 'none' : acting ? 'rem' : 'none';
    const fields = Object.entries(options.fields ?? {}).flatMap(([k, v]) => [k, String(v)]);
    const [ok, state, execution] = await this.scripts.rpsRunApply(
      this.keys.run(runId),
      this.keys.runIndex(),
      this.keys.peerRuns(acting || '-'),
      from.join(','),
      to.to,
      options.execution === undefined ? '' : String(options.execution),
      event === 'dispatch' ? '' : acting,
      setPeer,
      peerOp,
      String(options.now ?? Date.now()),
      ...fields,
    );
    if (ok === 1) return { ok: true, state: state as RunState, execution: Number(execution) };
    if (state === '') return { ok: false, reason: `run ${runId} does not exist`, state: null };
    const legal = transition(state as RunState, event);
    const reason = legal.ok
      ? `run ${runId} is held by another peer or execution (now execution ${execution})`
      : legal.reason;
    return { ok: false, reason, state: state as RunState };
  }

  /** Appends output for one execution; false when the run was deleted or resubmitted meanwhile. */
  async appendOutput(runId: number, execution: number, chunk: string): Promise<boolean> {
    const length = await this.scripts.rpsRunAppendOutput(
      this.keys.run(runId),
      this.keys.runOutput(runId),
      String(execution),
      chunk,
    );
    return length >= 0;
  }

  /**
   * The job process of a run that started in the `building` phase (an rjr
   * hand-over) is running now: the phase is cleared and `startedAt` set.
   * False when that execution is no longer running.
   */
  async markRunning(runId: number, execution: number, startedAt: string, now = Date.now()): Promise<boolean> {
    const written = await this.scripts.rpsRunMarkRunning(
      this.keys.run(runId),
      String(execution),
      startedAt,
      String(now),
    );
    return written === 1;
  }

  /**
   * Removes every trace of a run (record, request, output, index, its peer's
   * set). Idempotent. Returns the record as it was, so the caller can tell
   * the owning peer.
   */
  async delete(runId: number): Promise<RunRecord | null> {
    const record = await this.get(runId);
    const tx = this.redis
      .multi()
      .del(this.keys.run(runId), this.keys.runRequest(runId), this.keys.runOutput(runId))
      .zrem(this.keys.runIndex(), String(runId));
    if (record?.peerId) tx.srem(this.keys.peerRuns(record.peerId), String(runId));
    await tx.exec();
    return record;
  }
}
