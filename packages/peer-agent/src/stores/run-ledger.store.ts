import path from 'node:path';
import type { Redis } from 'ioredis';
import {
  loadLuaScript,
  refusedChange,
  RunStore,
  transition,
  type ApplyOptions,
  type ApplyResult,
  type RedisKeys,
  type RunEvent,
  type RunRecord,
} from '@rps/common';
import type { Logger } from 'pino';
import { SubmitAcks } from './submit-acks.store';

const CLAIM_SCRIPT = loadLuaScript(path.join(__dirname, '../../lua'), 'run-claim');
const CLAIM_COMMAND = 'rpsAgentRunClaim';

interface ClaimScripts {
  rpsAgentRunClaim(...args: Array<string | number>): Promise<[number, string, string]>;
}

/**
 * The agent's view of run records: every state change goes through common's
 * {@link RunStore} (the atomic compare-and-set) and, when it succeeds, is
 * announced on `keys.runEvents()` for dashboards and tests by the same
 * script, so the message leaves with the change.
 */
export class RunLedger {
  private readonly runs: RunStore;
  /** Wakes a claim waiting for the gateway's acknowledgement (see {@link SubmitAcks}). */
  readonly acks: SubmitAcks;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    logger: Logger,
    /** A subscriber connection for submit acknowledgements; none: a waiting claim polls. */
    events?: Redis,
  ) {
    this.runs = new RunStore(redis, keys);
    if (!(CLAIM_COMMAND in redis)) redis.defineCommand(CLAIM_COMMAND, CLAIM_SCRIPT);
    this.acks = new SubmitAcks(events, keys, logger);
  }

  /**
   * `dispatch` of one execution to `peerId` (as {@link apply} would do it),
   * unless that execution is still pending (its submit not acknowledged by
   * the gateway): then `pending` and nothing changes (run-claim-3.lua).
   */
  async claim(runId: number, execution: number, peerId: string): Promise<ApplyResult | 'pending'> {
    const to = transition('queued', 'dispatch');
    if (!to.ok) throw new Error(to.reason);
    const [code, state, current] = await (this.redis as unknown as ClaimScripts).rpsAgentRunClaim(
      this.keys.run(runId),
      this.keys.runIndex(),
      this.keys.peerRuns(peerId),
      String(execution),
      peerId,
      String(Date.now()),
      to.to,
      this.keys.runEvents(),
    );
    if (code === 2) return 'pending';
    if (code === 1) return { ok: true, state: to.to, execution };
    return refusedChange(runId, 'dispatch', state, current);
  }

  apply(runId: number, event: RunEvent, options: ApplyOptions): Promise<ApplyResult> {
    return this.runs.apply(runId, event, { ...options, announce: true });
  }

  /**
   * `start` of a dispatched run by this peer, stamped `startedAt`. The
   * connection resends a command whose reply it lost when it reconnects, so
   * the same start may reach Redis twice: the second is refused because the
   * run is already running. A refusal whose record shows this very start
   * (this peer, this execution, this `startedAt`) is therefore the start
   * having happened; an earlier life's start (another `startedAt`) is not.
   */
  async start(
    runId: number,
    options: { execution: number; peerId: string; fields: { startedAt: string; phase?: 'building' } },
  ): Promise<ApplyResult> {
    const result = await this.apply(runId, 'start', options);
    if (result.ok || result.state !== 'running') return result;
    const record = await this.runs.get(runId);
    const ours =
      record?.state === 'running' &&
      record.execution === options.execution &&
      record.peerId === options.peerId &&
      record.startedAt === options.fields.startedAt;
    // The start whose reply was lost announced itself (its script did), so nothing is sent again.
    if (!ours) return result;
    return { ok: true, state: 'running', execution: options.execution };
  }

  get(runId: number): Promise<RunRecord | null> {
    return this.runs.get(runId);
  }

  request(runId: number): Promise<Buffer | null> {
    return this.runs.request(runId);
  }

  output(runId: number): Promise<string> {
    return this.runs.output(runId);
  }

  appendOutput(runId: number, execution: number, chunk: string): Promise<boolean> {
    return this.runs.appendOutput(runId, execution, chunk);
  }

  /** The job process of a run started in the `building` phase runs now (rjr); false when that execution is not running. */
  markRunning(runId: number, execution: number, startedAt: string): Promise<boolean> {
    return this.runs.markRunning(runId, execution, startedAt);
  }

  /** Run ids a peer holds (dispatched or running), as recorded by the state machine. */
  async peerRunIds(peerId: string): Promise<number[]> {
    const members = await this.redis.smembers(this.keys.peerRuns(peerId));
    return members.map(Number).filter((id) => Number.isSafeInteger(id));
  }
}
