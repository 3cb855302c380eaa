import { randomUUID } from 'node:crypto';
import {
  appError,
  isFinalState,
  type AppError,
  toStatusResponse,
  type Logger,
  type RunStatusResponse,
  type RunStore,
  type SubmitResult,
} from '@rps/common';
import type { ConnectionStore } from '../stores/connection.store';
import type { ControlStore } from '../stores/control.store';
import type { RunQueueStore } from '../stores/run-queue.store';
import type { RunAckStore } from '../stores/run-ack.store';
import type { RunSubmitStore } from '../stores/run-submit.store';
import { isStagedRunBody, type StagedRunBody } from '../stores/run-upload.store';
import { parseRunRequest, type RunRequestMeta } from './run-request.parser';
import { RunSubmitter } from './run-submit.service';

/** What {@link RunsService} is built from. */
export interface RunsServiceDeps {
  runs: RunStore;
  runQueue: RunQueueStore;
  submits: RunSubmitStore;
  acks: RunAckStore;
  control: ControlStore;
  connection: ConnectionStore;
  logger: Logger;
  /** How long after its arrival a POST may still be accepted (IVIS-core waits 2 s). */
  submitBudgetMs: number;
}

/** Submit, status and delete of runs: everything but stop, which has its own service. */
export class RunsService {
  private readonly submitter: RunSubmitter;

  constructor(private readonly deps: RunsServiceDeps) {
    this.submitter = new RunSubmitter({
      runs: deps.runs,
      submits: deps.submits,
      acks: deps.acks,
      connection: deps.connection,
      logger: deps.logger,
      budgetMs: deps.submitBudgetMs,
    });
  }

  /**
   * Records a run and publishes its job; never waits for a peer (IVIS-core
   * gives up after 2 s). A live run answers as accepted without a new
   * execution; a queued one gets its job added again, which repairs a crash
   * between the record and the job and is a no-op otherwise. Redis trouble
   * on the way is retried within the budget (see {@link RunSubmitter}); an
   * error answer leaves a run that never starts. `fast` is the one-pass
   * validator's verdict from the upload, when the route ran it.
   */
  async submit(
    runId: number,
    raw: Buffer | StagedRunBody,
    arrivedAt = Date.now(),
    fast?: RunRequestMeta | null,
  ): Promise<SubmitResult> {
    // A staged body always has the validator's verdict (the upload reads back one without).
    const meta = isStagedRunBody(raw) ? stagedMeta(fast) : parseRunRequest(raw, fast);
    return this.submitter.submit(runId, raw, meta, arrivedAt);
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
}

function stagedMeta(fast: RunRequestMeta | null | undefined): RunRequestMeta {
  if (!fast) throw new Error('a staged run body without the validator verdict');
  return fast;
}

/** The 404 of an unknown run, shared by the run services. */
export function runNotFound(runId: number): AppError {
  return appError('run_not_found', `run ${runId} not found`);
}
