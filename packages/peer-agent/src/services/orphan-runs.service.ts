import type { RunRecord } from '@rps/common';
import type { Logger } from 'pino';
import type { Executor } from '../executors/executor';
import type { RunLedger } from '../stores/run-ledger.store';
import type { AgentMetrics } from './agent.metrics';
import type { FinalPushes } from './final-pushes.service';
import { MESSAGES, type ReporterFactory } from './run-reporter.factory';

/** Puts a dispatched run's job back where any agent can take it. */
export type RunJobRequeuer = (runId: number, execution: number) => Promise<void>;

export interface OrphanRunsDeps {
  ledger: RunLedger;
  executor: Executor;
  reporters: ReporterFactory;
  finals: FinalPushes;
  requeueJob: RunJobRequeuer;
  metrics: AgentMetrics;
  peerId: string;
  logger: Logger;
}

/**
 * Runs recorded as held by this peer that no process of this agent is
 * handling: left over by an earlier life of the agent (killed, crashed), or
 * addressed by a control command after their processor is gone.
 */
export class OrphanRuns {
  constructor(private readonly deps: OrphanRunsDeps) {}

  /**
   * At start, before taking new runs: a `running` run of the previous life
   * may have had side effects, so it is failed and reported, never re-run; a
   * `dispatched` one never started, so it goes back to the queue.
   */
  async recover(): Promise<{ failed: number; requeued: number }> {
    const { ledger, peerId, logger } = this.deps;
    let failed = 0;
    let requeued = 0;
    for (const runId of await ledger.peerRunIds(peerId)) {
      const record = await ledger.get(runId);
      if (!record || record.peerId !== peerId) continue;
      if (record.state === 'running' && (await this.close(record, 'fail', MESSAGES.agentRestarted))) failed++;
      if (record.state === 'dispatched') {
        const result = await ledger.apply(runId, 'requeue', { execution: record.execution, peerId });
        if (result.ok) {
          // Usually a no-op (the job still exists and BullMQ re-delivers it once its lock expires).
          await this.deps.requeueJob(runId, record.execution);
          requeued++;
        }
      }
    }
    if (failed + requeued > 0) logger.warn({ failed, requeued }, 'recovered runs of an earlier agent life');
    return { failed, requeued };
  }

  /** Ends a run nobody here is handling, and reports it to IVIS-core. False when the state machine refused. */
  async close(record: RunRecord, event: 'fail' | 'stop', errMsg: string): Promise<boolean> {
    const { ledger, peerId } = this.deps;
    const finishedAt = new Date().toISOString();
    // Read before the change: the output is part of the final status recorded with it.
    const output = await ledger.output(record.runId);
    const reporter = this.deps.reporters.create({
      runId: record.runId,
      jobId: record.jobId,
      accessToken: null,
      silent: false,
    });
    const applied = await this.deps.finals.end(
      {
        runId: record.runId,
        execution: record.execution,
        event,
        startedAt: record.startedAt || undefined,
        finishedAt,
        output,
        errMsg,
      },
      { execution: record.execution, peerId, fields: { finishedAt, error: errMsg, reason: errMsg.trim() } },
      reporter,
      true,
      // The job an earlier life left running ends before IVIS-core hears it did.
      async () => {
        if (record.state === 'running') await this.deps.executor.abandon(record.runId).catch(() => undefined);
      },
    );
    if (!applied.ok) return false;
    this.deps.metrics.runEnded(event === 'stop' ? 'stopped' : 'failed');
    return true;
  }
}
