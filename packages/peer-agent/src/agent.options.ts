import { DEFAULT_PUSH_RETRY, type PushRetry } from '@rps/common';

/**
 * Tuning knobs of the agent, passed down through {@link createService}. The
 * ones operators need are config keys (`agent.heartbeatIntervalMs`,
 * `maxOutputBytes`, `stopGraceMs`, `executor.buildTimeoutMs`, `pipArgs`,
 * `ivisWheelDir`, set by main.ts); the rest keep these defaults.
 */
export interface AgentOptions {
  /** How often the agent refreshes its peer record and `peers` score. */
  heartbeatIntervalMs: number;
  /** BullMQ lock of a run job; a dead agent's job is re-delivered this long after its last renewal. */
  lockDurationMs: number;
  /** How often this agent's workers look for stalled jobs (of any agent). */
  stalledIntervalMs: number;
  /** Re-deliveries of a stalled job before BullMQ gives up; high, because a dispatched run must survive agent deaths. */
  maxStalledCount: number;
  /** Attempts per push to IVIS-core (network errors, 5xx, 408, 429 are retried). */
  pushAttempts: number;
  /** First backoff between push attempts; doubles per attempt up to {@link pushMaxBackoffMs}. */
  pushBackoffMs: number;
  pushMaxBackoffMs: number;
  /** Deadline of one HTTP request to IVIS-core or to a job runner. */
  httpTimeoutMs: number;
  /** Concurrency of the `pushes` queue worker. */
  pushConcurrency: number;
  /** How long a run's final pushes wait for its in-run pushes still in flight (then those are dropped). */
  finalPushWaitMs: number;
  /** How often the agent moves due entries of the push outbox (any process's) onto the `pushes` queue. */
  outboxDrainMs: number;
  /** Retry policy of the final push jobs this agent queues. */
  finalPushRetry: PushRetry;
  /** Output is written to Redis and emitted to IVIS-core at most this often. */
  outputFlushMs: number;
  /** Stored output cap in UTF-8 bytes (IVIS `maxRunOutputBytes`). */
  maxOutputBytes: number;
  /** How much of a job's stderr (the tail) goes into its failure message. */
  stderrTailBytes: number;
  /** A task build (extract, venv, pip) that takes longer fails the run. */
  buildTimeoutMs: number;
  /** Extra arguments for `pip install` (e.g. `--no-index --find-links DIR` on offline peers). */
  pipArgs: readonly string[];
  /** Folder holding the `ivis` helper wheel; installed with `--no-index` when set. */
  ivisWheelDir: string | null;
  /** Time between SIGINT and SIGKILL when a job is stopped. */
  stopGraceMs: number;
  /** Period of `access_token_refresh` emits while a run with a token lives. */
  tokenRefreshMs: number;
  /** Block time of one control-stream read; bounds how long the reader takes to stop. */
  controlBlockMs: number;
  /** Poll period of the rjr executor's `GET /run/:id`. */
  rjrPollMs: number;
  /** The rjr executor fails a run after the job runner was unreachable this long. */
  rjrUnreachableMs: number;
  /**
   * The rjr executor takes a 404 this soon after its POST as "row not created
   * yet": the runner answers the POST before its worker process has written
   * the row, which can wait up to sqlite3's 1 s busy timeout per attempt.
   */
  rjrRowGraceMs: number;
  /**
   * After a final status the job runner pushed itself (once, no retries), the
   * agent waits this long for IVIS-core's acknowledgement (its DELETE of the
   * run), then pushes the final status itself. IVIS-core deletes within its
   * handling of the push (its own DELETE has a 2 s timeout).
   */
  rjrFinalAckMs: number;
  /** The rjr executor sends a stop again when the run still goes on this long after the runner took it. */
  rjrStopResendMs: number;
  /** How long the agent waits for its runs to end after stopping them at shutdown. */
  shutdownRunsTimeoutMs: number;
}

/** The defaults main.ts uses. */
export const DEFAULT_AGENT_OPTIONS: Readonly<AgentOptions> = Object.freeze({
  heartbeatIntervalMs: 2000,
  lockDurationMs: 10_000,
  stalledIntervalMs: 5000,
  maxStalledCount: 1000,
  pushAttempts: 5,
  pushBackoffMs: 500,
  pushMaxBackoffMs: 5000,
  httpTimeoutMs: 10_000,
  pushConcurrency: 4,
  finalPushWaitMs: 10_000,
  outboxDrainMs: 5000,
  finalPushRetry: DEFAULT_PUSH_RETRY,
  outputFlushMs: 1000,
  maxOutputBytes: 1_000_000,
  stderrTailBytes: 64 * 1024,
  buildTimeoutMs: 10 * 60_000,
  pipArgs: [],
  ivisWheelDir: null,
  stopGraceMs: 5000,
  tokenRefreshMs: 30_000,
  controlBlockMs: 1000,
  rjrPollMs: 250,
  rjrUnreachableMs: 30_000,
  rjrRowGraceMs: 5000,
  rjrFinalAckMs: 10_000,
  rjrStopResendMs: 5000,
  shutdownRunsTimeoutMs: 15_000,
});
