import path from 'node:path';
import type { Redis } from 'ioredis';
import type { OutboxEntry } from '../contracts/final-pushes.contract';
import { runRecordSchema, type RunRecord } from '../contracts/run.contract';
import type { RedisKeys } from '../redis/keys';
import { loadLuaScript } from '../redis/lua';
import { FINAL_STATES, statesAllowing, transition, type RunEvent, type RunState } from './run-state';

const LUA_DIR = path.join(__dirname, '../../lua');
const SCRIPTS = ['run-submit', 'run-apply', 'run-append-output', 'run-mark-running'].map((name) =>
  loadLuaScript(LUA_DIR, name),
);
/** The submit acknowledgement (docs/gateway.md, "Runs the gateway did not accept"). */
const ACK_SCRIPTS = ['run-acknowledge', 'run-fail-pending'].map((name) => loadLuaScript(LUA_DIR, name));

interface RunScripts {
  rpsRunSubmit(...args: Array<string | Buffer | number>): Promise<[string, string, string, string]>;
  rpsRunAcknowledge(...args: Array<string | number>): Promise<AckResult>;
  rpsRunFailPending(...args: Array<string | number>): Promise<number>;
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
  /**
   * The execution waits for {@link RunStore.acknowledge} before an agent may
   * start it: true for a new execution and for a retry of one that was never
   * acknowledged.
   */
  pending: boolean;
}

/**
 * What {@link RunStore.acknowledge} found: `acked` (now or earlier), `late`
 * (the window had passed: the run stays pending and is failed later),
 * `gone` (no record), `changed` (another execution), `final` (it ended).
 */
export type AckResult = 'acked' | 'late' | 'gone' | 'changed' | 'final';

/** Conditions and side data of {@link RunStore.apply}. */
export interface ApplyOptions {
  /** Only apply to this execution (a late event of an older execution is dropped). */
  execution?: number;
  /** The peer acting: for `dispatch` it becomes the owner; for other events the owner must match. */
  peerId?: string;
  /** Extra record fields to set in the same step. */
  fields?: Partial<Pick<RunRecord, 'startedAt' | 'finishedAt' | 'error' | 'reason' | 'phase'>>;
  now?: number;
  /**
   * Pushes that must reach IVIS-core once this change is made (a final
   * state's status and emits, built by `buildFinalPushes`): written to the
   * push outbox in the same atomic step. `dueAt` (default: now) is when any
   * push worker may queue them; until then only the writer does (it first
   * lets its own earlier pushes of the run finish).
   */
  outbox?: OutboxEntry & { dueAt?: number };
  /**
   * Announce the change on `keys.runEvents()` (a {@link RunStateMessage},
   * `at` = now, `peerId` the acting peer, '' for `requeue`) from the same
   * script: the message leaves with the change, in the order of the changes,
   * without a command or a wait of its own.
   */
  announce?: boolean;
}

/** The outcome of {@link RunStore.apply}. */
export type ApplyResult =
  { ok: true; state: RunState; execution: number } | { ok: false; reason: string; state: RunState | null };

/**
 * The refusal of a compare-and-set that did not apply, from what the record
 * held (`state` '' when there is no record): the state machine's reason
 * when the event is illegal from that state, else the owner or execution
 * condition that failed. Shared by every script that applies an event.
 */
export function refusedChange(runId: number, event: RunEvent, state: string, execution: string): ApplyResult {
  if (state === '') return { ok: false, reason: `run ${runId} does not exist`, state: null };
  const legal = transition(state as RunState, event);
  const reason = legal.ok
    ? `run ${runId} is held by another peer or execution (now execution ${execution})`
    : legal.reason;
  return { ok: false, reason, state: state as RunState };
}

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
    for (const script of [...SCRIPTS, ...ACK_SCRIPTS]) {
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
   * With `pending` (the gateway's submits) a new execution is not startable
   * until {@link acknowledge}d.
   */
  async submit(
    runId: number,
    body: Buffer,
    meta: { taskId: number; jobId: number },
    now = Date.now(),
    options: { pending?: boolean } = {},
  ) {
    const [outcome, execution, state, pending] = await this.scripts.rpsRunSubmit(
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
      options.pending ? '1' : '0',
    );
    return { outcome, execution: Number(execution), state, pending: pending === '1' } as SubmitResult;
  }

  /**
   * Makes a pending execution startable: the gateway's last step before its
   * 200. Refused (`late`) when more than `windowMs` passed on Redis's clock
   * since the submit was recorded, so an acknowledgement that Redis executes
   * after the gateway gave up can never make the run start.
   */
  async acknowledge(runId: number, execution: number, windowMs: number): Promise<AckResult> {
    return this.scripts.rpsRunAcknowledge(
      this.keys.run(runId),
      String(execution),
      String(Math.floor(windowMs)),
    );
  }

  /**
   * Fails a pending (never acknowledged) execution so that it never starts;
   * false when it is not pending and queued any more. `minPendingMs` (Redis
   * clock) spares a run whose window a retried submit restarted.
   */
  async failPending(
    runId: number,
    execution: number,
    options: { minPendingMs?: number; error: string; reason: string; now?: number },
  ): Promise<boolean> {
    const to = transition('queued', 'fail');
    if (!to.ok) throw new Error(to.reason);
    const now = options.now ?? Date.now();
    const failed = await this.scripts.rpsRunFailPending(
      this.keys.run(runId),
      this.keys.runIndex(),
      String(execution),
      String(options.minPendingMs ?? 0),
      to.to,
      String(now),
      'error',
      options.error,
      'reason',
      options.reason,
      'finishedAt',
      new Date(now).toISOString(),
    );
    return failed === 1;
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
    const now = options.now ?? Date.now();
    const outbox = options.outbox;
    const [ok, state, execution] = await this.scripts.rpsRunApply(
      this.keys.run(runId),
      this.keys.runIndex(),
      this.keys.peerRuns(acting || '-'),
      this.keys.pushOutbox(),
      this.keys.pushOutboxDue(),
      from.join(','),
      to.to,
      options.execution === undefined ? '' : String(options.execution),
      event === 'dispatch' ? '' : acting,
      setPeer,
      peerOp,
      String(now),
      outbox?.jobId ?? '',
      outbox ? JSON.stringify({ jobId: outbox.jobId, data: outbox.data, owner: outbox.owner }) : '',
      String(outbox?.dueAt ?? now),
      options.announce ? this.keys.runEvents() : '',
      event === 'requeue' ? '' : acting,
      ...fields,
    );
    if (ok === 1) return { ok: true, state: state as RunState, execution: Number(execution) };
    return refusedChange(runId, event, state, execution);
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
