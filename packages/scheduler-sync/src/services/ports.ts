import type { OutboxEntry } from '@rps/common';

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

/** The `pushes` queue (and the push outbox) as the scheduler uses them. */
export interface FailurePushes {
  /** Queues an outbox entry the scheduler just wrote with a final state (idempotent by its job id). */
  queue(jobId: string): Promise<void>;
  /** Queues a push job built again from a record (a repair); a repeat of the same id is a no-op. */
  add(entry: OutboxEntry): Promise<void>;
  /** Whether the job waits in the outbox or exists on the queue (not yet trimmed). */
  exists(jobId: string): Promise<boolean>;
  /** Enqueues the pushes of a run the gateway stopped before start (common's buildStopPushes); a repeat is a no-op. */
  enqueueStop(runId: number, execution: number, finishedAt: string): Promise<void>;
  /** Whether the stop status push of this run execution was ever enqueued (and not yet trimmed). */
  stopExists(runId: number, execution: number): Promise<boolean>;
}
