/**
 * What the periodic services need from the queues, as interfaces, so the
 * logic stays free of BullMQ and can be read (and faked) on its own. The
 * implementations live in `src/jobs`.
 */

/** What {@link RunJobs.ensure} found or did. */
export type EnsureJobOutcome = 'present' | 'added' | 'replaced';

/** The `runs` queue as the scheduler repairs it. */
export interface RunJobs {
  /**
   * Makes sure a job for this execution can still be delivered to an agent:
   * adds it when missing, replaces it when it already completed or failed
   * (BullMQ never re-adds an id that still exists), leaves a waiting, delayed
   * or active job alone (an active job on a dead worker comes back through
   * BullMQ's stalled-job recovery).
   */
  ensure(runId: number, execution: number): Promise<EnsureJobOutcome>;
}

/** A final RUN_FAIL the RPS itself reports for a run (lost peer, unrecoverable record). */
export interface FinalFailure {
  runId: number;
  execution: number;
  /** Why the run failed; shown in IVIS (`error`, emit data, head of the output). */
  error: string;
  /** The run's output so far. */
  output: string;
  /** ISO time, as in the record's `finishedAt`. */
  finishedAt: string;
  /** Names the origin in the job ids (`lost`, `failed`), which keeps each push idempotent. */
  origin: 'lost' | 'failed';
}

/** The `pushes` queue as the scheduler fills it. */
export interface FailurePushes {
  /** Enqueues the status push and the fail emit together; a repeat of the same run and execution is a no-op. */
  enqueue(failure: FinalFailure): Promise<void>;
  /** Whether the status push of this run execution was ever enqueued (and not yet trimmed). */
  exists(origin: FinalFailure['origin'], runId: number, execution: number): Promise<boolean>;
  /** Enqueues the pushes of a run the gateway stopped before start (common's buildStopPushes); a repeat is a no-op. */
  enqueueStop(runId: number, execution: number, finishedAt: string): Promise<void>;
  /** Whether the stop status push of this run execution was ever enqueued (and not yet trimmed). */
  stopExists(runId: number, execution: number): Promise<boolean>;
}
