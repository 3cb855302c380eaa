import { isFinalState, type RunStore } from '@rps/common';
import type { Logger } from 'pino';
import type { RunIndexStore } from '../stores/run-index.store';

/** A queue whose finished jobs retention trims. */
export interface TrimmableQueue {
  readonly name: string;
  /** Removes up to `limit` jobs of `type` finished more than `graceMs` ago; returns their ids. */
  clean(graceMs: number, limit: number, type: 'completed' | 'failed'): Promise<string[]>;
}

/** The counts one retention tick logs. */
export interface RetentionSummary {
  runsDeleted: number;
  /** Old runs left alone because they are not final (reconciliation's business). */
  runsKept: number;
  jobsTrimmed: number;
}

const CLEAN_LIMIT = 1000;

/**
 * Retention: final runs (record, request body, output, index entry) whose
 * last change is older than `retentionMs` are deleted, and finished jobs of
 * the `runs` and `pushes` queues older than the same age are trimmed. Runs go
 * first so a lost run never outlives the push job whose id keeps its final
 * push from being enqueued twice.
 */
export class RetentionService {
  constructor(
    private readonly deps: {
      index: RunIndexStore;
      runs: RunStore;
      queues: TrimmableQueue[];
      retentionMs: number;
      logger: Logger;
    },
  ) {}

  async run(now = Date.now()): Promise<RetentionSummary> {
    const summary: RetentionSummary = { runsDeleted: 0, runsKept: 0, jobsTrimmed: 0 };
    for (const run of await this.deps.index.scan(now - this.deps.retentionMs)) {
      if (run.state !== null && !isFinalState(run.state)) {
        summary.runsKept++;
        continue;
      }
      // The delete is unconditional: a run resubmitted since the scan must survive it.
      const record = await this.deps.runs.get(run.runId);
      if (record && (!isFinalState(record.state) || record.updatedAt > now - this.deps.retentionMs)) continue;
      await this.deps.runs.delete(run.runId);
      summary.runsDeleted++;
    }
    for (const queue of this.deps.queues) {
      for (const type of ['completed', 'failed'] as const) {
        summary.jobsTrimmed += (await queue.clean(this.deps.retentionMs, CLEAN_LIMIT, type)).length;
      }
    }
    return summary;
  }
}
