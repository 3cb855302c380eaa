import { RemoteRunState, type RunStatusResponse } from '@rps/common';
import type { Logger } from 'pino';
import {
  type Executor,
  type ExecutorRun,
  type PreparedRun,
  type RunHandle,
  type RunIo,
  type RunResult,
} from '../executor';
import { RjrClient } from './rjr.client';

export interface RjrExecutorOptions {
  /** The job runner's base URL (`agent.executor.url`). */
  url: string;
  pollMs: number;
  unreachableMs: number;
  /** A 404 this soon after the POST means "not recorded yet", not "gone" (the runner creates its row later). */
  rowGraceMs: number;
  /** How long the agent waits for IVIS-core to acknowledge (delete) a final status the runner pushed. */
  finalAckMs: number;
  /** A stop the runner took (200) but whose run still goes on after this long is sent again. */
  stopResendMs: number;
  timeoutMs: number;
  logger: Logger;
}

/** What the runner's status says when it keeps no `finished_at` but did push its failure (ivis-protocol.md 3.3). */
const RUNNER_CANCELLED = 'Run Cancelled';

/** How long the row stays after a final the runner pushes itself: its read-back for the push takes milliseconds. */
const FINAL_SETTLE_MS = 500;

/** Stops sent for one run at most (the runner SIGINTs once per stop and never escalates). */
const STOP_SENDS = 3;

/** Attempts at clearing a leftover row before a POST (the runner may answer 200 without deleting, on SQLITE_BUSY). */
const CLEAR_ATTEMPTS = 3;

/**
 * Hands runs to an existing IVIS job runner on this peer (ivis-protocol.md
 * 1.6, 3.3): the body goes unchanged to `POST /run/:id`, progress comes from
 * polling `GET /run/:id`. The runner builds, runs and pushes to IVIS-core by
 * itself, so the agent mirrors state and output into Redis, and pushes only
 * what the runner never pushes (build failures) or may have failed to push
 * (it does not retry). Written against the real runner's quirks; see
 * docs/peer-agent.md "rjr executor against the real runner".
 */
export class RjrExecutor implements Executor {
  readonly kind = 'rjr' as const;
  readonly agentPushes = false;
  readonly startsBuilding = true;
  private readonly client: RjrClient;

  constructor(private readonly options: RjrExecutorOptions) {
    this.client = new RjrClient(options.url, options.timeoutMs);
  }

  async prepare(run: ExecutorRun): Promise<PreparedRun> {
    // The runner builds after POST /run, which also starts the run: nothing to do before `start`.
    return { start: (io) => this.start(run, io), release: () => undefined };
  }

  deleteTask(taskId: number): Promise<void> {
    return this.client.deleteTask(taskId);
  }

  async abandon(runId: number): Promise<void> {
    await this.client.stop(runId).catch(() => undefined);
  }

  private start(run: ExecutorRun, io: RunIo): RunHandle {
    const follower = new RunFollower(run, io, this.client, this.options);
    // The slot is free only once the runner's row is gone: a POST racing the
    // runner's DELETE loses its row to SQLITE_BUSY yet runs (issue 12, item 1).
    const done = follower.follow().then(async (result) => {
      await this.removeRow(run.runId);
      return result;
    });
    return { done, stop: () => follower.stop() };
  }

  private async removeRow(runId: number): Promise<void> {
    try {
      await this.client.deleteRun(runId);
    } catch (err) {
      this.options.logger.error(
        { runId, url: this.options.url, err: String(err) },
        'job runner did not delete the run; its row stays until the run id comes again',
      );
    }
  }
}

/** Where one run is on the runner, as the agent last saw it. */
type FollowPhase = 'posting' | 'awaiting-row' | 'building' | 'running';

/** Follows one run on the runner, from the POST to a final status. */
class RunFollower {
  private phase: FollowPhase = 'posting';
  private stopWanted = false;
  private stopDelivered = false;
  private stopSending = false;
  private stopSentAt = 0;
  private stopSends = 0;
  private seen = 0;

  constructor(
    private readonly run: ExecutorRun,
    private readonly io: RunIo,
    private readonly client: RjrClient,
    private readonly options: RjrExecutorOptions,
  ) {}

  stop(): void {
    if (this.stopWanted) return;
    this.stopWanted = true;
    if (this.phase !== 'posting') void this.deliverStop();
  }

  async follow(): Promise<RunResult> {
    const refused = await this.handOver();
    if (refused) return refused;
    const postedAt = Date.now();
    this.phase = 'awaiting-row';
    if (this.stopWanted) void this.deliverStop();
    // The last answer the agent could use; a runner that stays unreachable or
    // keeps answering what the agent cannot read fails the run after
    // `unreachableMs` instead of being polled forever.
    let lastUsable = Date.now();
    let warned = false;
    const { runId } = this.run;
    for (;;) {
      await sleep(this.options.pollMs);
      const answer = await this.client.status(runId);
      if (answer.kind === 'status') {
        lastUsable = Date.now();
        const ended = this.observe(answer.status);
        if (!ended) continue;
        // The runner writes its final state, then reads the row back to push it: a DELETE
        // between the two (seen against the real runner) leaves IVIS-core without its push.
        if (ended.pushUnlessDeletedWithinMs !== undefined) await sleep(FINAL_SETTLE_MS);
        return ended;
      }
      if (answer.kind === 'missing') {
        lastUsable = Date.now();
        if (this.phase !== 'awaiting-row') return failed('the run disappeared from the job runner');
        if (Date.now() - postedAt < this.options.rowGraceMs) continue;
        return failed(
          `the job runner accepted the run but recorded no row for it within ${this.options.rowGraceMs} ms`,
        );
      }
      if (!warned) {
        warned = true;
        this.options.logger.warn({ runId, problem: answer.problem }, 'job runner status unusable, retrying');
      }
      if (Date.now() - lastUsable >= this.options.unreachableMs) {
        return failed(`${answer.problem} (for ${this.options.unreachableMs} ms)`);
      }
    }
  }

  /** Clears a leftover row of this run id, then POSTs; a result when the run cannot be handed over. */
  private async handOver(): Promise<RunResult | null> {
    const { runId, raw } = this.run;
    try {
      // The runner's create keeps an existing row (an earlier execution whose
      // DELETE never came): the agent would read its old final status.
      if (!(await this.clearLeftover())) {
        return failed(`the job runner keeps an earlier row of run ${runId} and does not delete it`);
      }
      const status = await this.client.post(runId, raw);
      if (status >= 300) return failed(`job runner refused the run (HTTP ${status})`);
      return null;
    } catch (err) {
      return failed(`job runner unreachable: ${String(err)}`);
    }
  }

  private async clearLeftover(): Promise<boolean> {
    for (let attempt = 0; attempt < CLEAR_ATTEMPTS; attempt++) {
      const before = await this.client.status(this.run.runId);
      if (before.kind === 'missing') return true;
      await this.client.deleteRun(this.run.runId);
    }
    return (await this.client.status(this.run.runId)).kind === 'missing';
  }

  /** Mirrors one status answer; a result once the run is over on the runner. */
  private observe(status: RunStatusResponse): RunResult | null {
    if (this.phase === 'awaiting-row') this.phase = 'building';
    if (this.stopWanted) this.stopAgainIfIgnored();
    if (status.output.length > this.seen) {
      this.io.onOutput(status.output.slice(this.seen));
      this.seen = status.output.length;
    }
    switch (status.status) {
      case RemoteRunState.QUEUED:
        return null;
      case RemoteRunState.RUNNING:
        if (this.phase === 'building') {
          this.phase = 'running';
          this.io.onRunning?.(new Date().toISOString());
        }
        return null;
      case RemoteRunState.SUCCESS:
        return { succeeded: true, errMsg: '', pushUnlessDeletedWithinMs: this.options.finalAckMs };
      case RemoteRunState.RUN_FAIL:
        return this.failure(status);
    }
  }

  /**
   * The runner pushes a failure it ends with `finished_at`, and a stop while
   * queued ("INFO: Run Cancelled"); a build failure or its "Remote runner
   * error" it only emits, so only the agent can push those (3.3, 7 item 10).
   */
  private failure(status: RunStatusResponse): RunResult {
    if (status.finished_at !== undefined || status.error.includes(RUNNER_CANCELLED)) {
      return { succeeded: false, errMsg: status.error, pushUnlessDeletedWithinMs: this.options.finalAckMs };
    }
    const errMsg =
      status.error ||
      'Remote Build Failed\n(the job runner gives the details only in its run/<id>/fail event)';
    return { succeeded: false, errMsg, needsFinalPush: true };
  }

  /**
   * A job that gets the runner's SIGINT while Python is still starting may
   * miss it (seen with the real runner: the job ran on to SUCCESS), and the
   * runner sends no second signal: after `stopResendMs` the stop goes again.
   */
  private stopAgainIfIgnored(): void {
    if (!this.stopDelivered) {
      void this.deliverStop();
    } else if (this.stopSends < STOP_SENDS && Date.now() - this.stopSentAt >= this.options.stopResendMs) {
      this.stopDelivered = false;
      void this.deliverStop();
    }
  }

  private async deliverStop(): Promise<void> {
    if (this.stopDelivered || this.stopSending) return;
    this.stopSending = true;
    try {
      const status = await this.client.stop(this.run.runId);
      // 404: no row yet; the next status answer that shows one sends the stop again.
      if (status === 200) {
        this.stopDelivered = true;
        this.stopSentAt = Date.now();
        this.stopSends++;
      } else this.options.logger.info({ runId: this.run.runId, status }, 'job runner stop not taken yet');
    } catch (err) {
      this.options.logger.warn({ runId: this.run.runId, err: String(err) }, 'job runner stop failed');
    } finally {
      this.stopSending = false;
    }
  }
}

function failed(errMsg: string): RunResult {
  return { succeeded: false, errMsg, needsFinalPush: true };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
