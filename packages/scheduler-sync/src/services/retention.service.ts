import { isFinalState, type PeerAdmin, type RunStore } from '@rps/common';
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
  /** Removed peers whose records were deleted. */
  peersPruned: number;
}

const CLEAN_LIMIT = 1000;

/**
 * Retention: final runs (record, request body, output, index entry) whose
 * last change is older than `retentionMs` are deleted, and finished jobs of
 * the `runs` and `pushes` queues older than the same age are trimmed. Runs go
 * first so a lost run never outlives the push job whose id keeps its final
 * push from being enqueued twice. Peers an operator removed longer ago than
 * the same age are pruned (record, `peers` member, runs set, control stream,
 * sync probe, address history); stopped peers are members and are kept.
 */
export class RetentionService {
  constructor(
    private readonly deps: {
      index: RunIndexStore;
      runs: RunStore;
      peers: Pick<PeerAdmin, 'list' | 'prune'>;
      queues: TrimmableQueue[];
      retentionMs: number;
      logger: Logger;
    },
  ) {}

  async run(now = Date.now()): Promise<RetentionSummary> {
    const summary: RetentionSummary = { runsDeleted: 0, runsKept: 0, jobsTrimmed: 0, peersPruned: 0 };
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
    summary.peersPruned = await this.prunePeers(now - this.deps.retentionMs);
    return summary;
  }

  private async prunePeers(cutoff: number): Promise<number> {
    let pruned = 0;
    for (const peer of await this.deps.peers.list()) {
      if (peer.state !== 'removed' || (peer.record?.removedAt ?? 0) > cutoff) continue;
      // The script checks state and removedAt again: a peer re-admitted since the list stays.
      if (await this.deps.peers.prune(peer.id, cutoff)) {
        this.deps.logger.info({ peerId: peer.id }, 'removed peer pruned');
        pruned++;
      }
    }
    return pruned;
  }
}
