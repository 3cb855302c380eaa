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
  type RunStateMessage,
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
 * announced on `keys.runEvents()` for dashboards and tests (sent at once,
 * its reply not waited for).
 */
export class RunLedger {
  private readonly runs: RunStore;
  /** Wakes a claim waiting for the gateway's acknowledgement (see {@link SubmitAcks}). */
  readonly acks: SubmitAcks;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly logger: Logger,
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
    );
    if (code === 2) return 'pending';
    if (code === 1) {
      void this.announce(runId, execution, to.to, 'dispatch', peerId);
      return { ok: true, state: to.to, execution };
    }
    return refusedChange(runId, 'dispatch', state, current);
  }

  async apply(runId: number, event: RunEvent, options: ApplyOptions): Promise<ApplyResult> {
    const result = await this.runs.apply(runId, event, options);
    // Not awaited: the message is sent right after the change on the same connection (so messages
    // keep their order), and the caller (e.g. a job about to be started) need not wait for its reply.
    if (result.ok) void this.announce(runId, result.execution, result.state, event, options.peerId);
    return result;
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
    if (!ours) return result;
    void this.announce(runId, options.execution, 'running', 'start', options.peerId);
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

  private async announce(
    runId: number,
    execution: number,
    state: RunStateMessage['state'],
    event: RunEvent,
    peerId: string | undefined,
  ): Promise<void> {
    const message: RunStateMessage = {
      runId,
      execution,
      state,
      // A requeued run belongs to nobody any more.
      peerId: event === 'requeue' ? '' : (peerId ?? ''),
      at: Date.now(),
    };
    try {
      await this.redis.publish(this.keys.runEvents(), JSON.stringify(message));
    } catch (err) {
      // The record is the truth and already written; the message is only a hint.
      this.logger.warn({ err, runId }, 'run event publish failed');
    }
  }
}
