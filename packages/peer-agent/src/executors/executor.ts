import type { RunRequestBody } from '@rps/common';

/** What an executor gets to know about a run. */
export interface ExecutorRun {
  runId: number;
  execution: number;
  taskId: number;
  jobId: number;
  /** The parsed request body (validated). */
  body: RunRequestBody;
  /** The request body exactly as IVIS-core sent it (the rjr executor forwards it unchanged). */
  raw: Buffer;
}

/** Callbacks from a running job. */
export interface RunIo {
  /** A piece of the run's stdout (decoded as UTF-8 without splitting characters). */
  onOutput(chunk: string): void;
  /**
   * Executors whose runs start in the `building` phase (see
   * {@link Executor.startsBuilding}): the job process is running now.
   */
  onRunning?(startedAt: string): void;
}

/** How the job process ended. */
export interface RunResult {
  succeeded: boolean;
  /** `Run failed with code X and signal Y\n\nError log:\n<stderr>` style message; '' on success. */
  errMsg: string;
  /**
   * rjr only: the job runner ended the run without pushing a final status to
   * IVIS-core (its build failures, ivis-protocol.md 7 item 10), so the agent must.
   */
  needsFinalPush?: boolean;
  /**
   * rjr only: the job runner pushed the final status itself, once, without
   * retries (ivis-protocol.md 2.6). IVIS-core acknowledges a final status by
   * deleting the run (2.3); if the run is still there this many ms after the
   * final state was recorded, the agent pushes the final status itself.
   */
  pushUnlessDeletedWithinMs?: number;
}

/** A started job. */
export interface RunHandle {
  readonly done: Promise<RunResult>;
  /** Asks the job to stop (SIGINT, then SIGKILL after a grace); `done` settles when it has. */
  stop(): void;
}

/** A run whose environment is ready: the only thing left is to start it. */
export interface PreparedRun {
  /** Starts the job. Never throws: a start failure settles `done` as a failure. */
  start(io: RunIo): RunHandle;
  /** Gives the task's build directory back (a task delete waits for it). */
  release(): void;
}

/** A build (or preparation) failure; the message is the run's failure message. */
export class BuildFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuildFailure';
  }
}

/**
 * One way of executing runs on this peer. `builtin` runs Python jobs itself
 * (ivis-protocol.md 6); `rjr` hands them to an existing IVIS job runner.
 */
export interface Executor {
  readonly kind: 'builtin' | 'rjr';
  /** Whether the agent pushes run progress to IVIS-core (false: the job runner does it itself). */
  readonly agentPushes: boolean;
  /**
   * The run is handed over at `start` but built afterwards (rjr): it is
   * recorded `running` with phase `building` (IVIS-core sees QUEUED) until
   * the executor calls {@link RunIo.onRunning}.
   */
  readonly startsBuilding?: boolean;
  /** Builds the run's environment; rejects with {@link BuildFailure}, or an AbortError when `signal` fires. */
  prepare(run: ExecutorRun, signal: AbortSignal): Promise<PreparedRun>;
  /** Removes the task's build (after the task's runs on this peer have ended). */
  deleteTask(taskId: number): Promise<void>;
  /** A run a previous incarnation of the agent started: make sure it does not go on (best effort). */
  abandon(runId: number): Promise<void>;
  /** The agent stops: helpers the executor started go (running jobs are not touched). */
  close?(): void;
}
