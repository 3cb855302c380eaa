import { randomUUID } from 'node:crypto';
import {
  AppError,
  isFinalState,
  toStatusResponse,
  type Logger,
  type RunStatusResponse,
  type RunStore,
  type SubmitResult,
} from '@rps/common';
import type { ControlStore } from '../stores/control.store';
import type { RunEventsStore } from '../stores/run-events.store';
import type { RunQueueStore } from '../stores/run-queue.store';
import { parseRunRequest } from './run-request.parser';

/** What {@link RunsService} is built from. */
export interface RunsServiceDeps {
  runs: RunStore;
  runQueue: RunQueueStore;
  control: ControlStore;
  events: RunEventsStore;
  logger: Logger;
}

/** Submit, status and delete of runs: everything but stop, which has its own service. */
export class RunsService {
  constructor(private readonly deps: RunsServiceDeps) {}

  /**
   * Records a run and publishes its job; never waits for a peer (IVIS-core
   * gives up after 2 s). A live run answers as accepted without a new
   * execution; a queued one gets its job added again, which repairs a crash
   * between the record and the job and is a no-op otherwise.
   */
  async submit(runId: number, raw: Buffer): Promise<SubmitResult> {
    const meta = parseRunRequest(raw);
    const result = await this.deps.runs.submit(runId, raw, meta);
    if (result.outcome !== 'existing' || result.state === 'queued') {
      try {
        await this.deps.runQueue.enqueue(runId, result.execution);
      } catch (err) {
        if (result.outcome !== 'existing') await this.failUnqueued(runId, result.execution, err);
        throw err;
      }
    }
    if (result.outcome !== 'existing') {
      this.publish(runId, result.execution, 'queued');
    }
    return result;
  }

  /** The job-runner status answer; 404 for a run the RPS does not know. */
  async status(runId: number): Promise<RunStatusResponse> {
    const [record, output] = await Promise.all([this.deps.runs.get(runId), this.deps.runs.output(runId)]);
    if (!record) throw runNotFound(runId);
    return toStatusResponse(record, output);
  }

  /**
   * Forgets a run. Idempotent; waits on nothing but Redis writes, because
   * IVIS-core sends it while its handling of the run's final push is open.
   * A live run's peer is told through its durable stream, without waiting.
   */
  async delete(runId: number): Promise<void> {
    const old = await this.deps.runs.delete(runId);
    if (!old) return;
    if (old.peerId && !isFinalState(old.state)) {
      await this.deps.control.send(old.peerId, { kind: 'deleteRun', id: randomUUID(), runId });
    }
    if (!isFinalState(old.state)) {
      // A locked job stays; the agent's compare-and-set fails on the missing record.
      await this.deps.runQueue.removeWaiting(runId, old.execution);
    }
    this.deps.logger.info({ runId, state: old.state, peerId: old.peerId }, 'run deleted');
  }

  /**
   * The run was recorded but its job could not be added: the POST fails
   * (503), and IVIS-core marks the run failed on its side. The record follows
   * (queued -> failed), so that reconciliation, which re-adds jobs of queued
   * runs, does not start a run IVIS-core has given up on; a job that was
   * added after all finds the run failed and is dropped by the agent. If
   * Redis takes neither write, reconciliation may still start it later.
   */
  private async failUnqueued(runId: number, execution: number, cause: unknown): Promise<void> {
    const error = `run not queued: ${cause instanceof Error ? cause.message : String(cause)}`;
    try {
      const applied = await this.deps.runs.apply(runId, 'fail', {
        execution,
        fields: { error, finishedAt: new Date().toISOString() },
      });
      this.deps.logger.error({ runId, execution, error, failed: applied.ok }, 'run recorded but not queued');
    } catch (err) {
      this.deps.logger.error(
        { runId, execution, error, err },
        'run recorded but not queued, and not marked failed: reconciliation may start it',
      );
    }
  }

  private publish(runId: number, execution: number, state: 'queued'): void {
    this.deps.events
      .publish({ runId, execution, state, peerId: '', at: Date.now() })
      .catch((err: unknown) => this.deps.logger.warn({ err, runId }, 'run event not published'));
  }
}

/** The 404 of an unknown run, shared by the run services. */
export function runNotFound(runId: number): AppError {
  return new AppError('run_not_found', 404, `run ${runId} not found`);
}
