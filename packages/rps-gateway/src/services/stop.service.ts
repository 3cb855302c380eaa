import { randomUUID } from 'node:crypto';
import {
  AppError,
  buildStopPushes,
  CANCELLED_BEFORE_START_REASON,
  RUN_CANCELLED_MESSAGE,
  type Logger,
  type RunRecord,
  type RunStore,
} from '@rps/common';
import type { ControlStore } from '../stores/control.store';
import type { PushQueueStore } from '../stores/push-queue.store';
import type { RunEventsStore } from '../stores/run-events.store';
import type { RunQueueStore } from '../stores/run-queue.store';
import { runNotFound } from './runs.service';
import { planStop } from './stop-plan';

/** What {@link StopService} is built from. */
export interface StopServiceDeps {
  runs: RunStore;
  runQueue: RunQueueStore;
  pushQueue: PushQueueStore;
  control: ControlStore;
  events: RunEventsStore;
  logger: Logger;
  ackTimeoutMs: number;
  now?: () => Date;
}

/** How a stop ended (for logs and tests). */
export type StopOutcome = 'cancelled' | 'signalled' | 'already-final';

/**
 * A run's state can move between our read and our write (an agent dispatches
 * or starts it), so a lost compare-and-set re-reads and plans again; a few
 * rounds are plenty since a run only moves forward.
 */
const MAX_ROUNDS = 4;

/** `POST /rps/run/:id/stop`. */
export class StopService {
  private readonly now: () => Date;

  constructor(private readonly deps: StopServiceDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  async stop(runId: number): Promise<StopOutcome> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const record = await this.deps.runs.get(runId);
      if (!record) throw runNotFound(runId);
      const action = planStop(record.state);
      if (action === 'none') return 'already-final';
      if (action === 'signal') return this.signal(record);
      if (await this.cancel(record)) return 'cancelled';
    }
    throw new AppError('run_busy', 503, `run ${runId} kept changing state; try again`);
  }

  /** Stops a run nobody has started; false when the run moved meanwhile. */
  private async cancel(record: RunRecord): Promise<boolean> {
    const { runId, execution } = record;
    const finishedAt = this.now().toISOString();
    const applied = await this.deps.runs.apply(runId, 'stop', {
      execution,
      // A dispatched run is in its peer's set; naming the peer takes it out.
      peerId: record.peerId || undefined,
      // The reason marks the run as owing the stop pushes (reconciliation repairs a lost enqueue).
      fields: { finishedAt, error: RUN_CANCELLED_MESSAGE, reason: CANCELLED_BEFORE_START_REASON },
    });
    if (!applied.ok) {
      this.deps.logger.debug({ runId, reason: applied.reason }, 'stop lost a race, re-reading');
      return false;
    }
    await this.deps.runQueue.removeWaiting(runId, execution);
    await this.deps.pushQueue.add(buildStopPushes(runId, execution, finishedAt));
    this.deps.events
      .publish({ runId, execution, state: 'stopped', peerId: record.peerId, at: Date.now() })
      .catch((err: unknown) => this.deps.logger.warn({ err, runId }, 'run event not published'));
    this.deps.logger.info({ runId, execution, was: record.state }, 'run cancelled before start');
    return true;
  }

  /** Asks the owning agent to stop a running run and waits for its answer. */
  private async signal(record: RunRecord): Promise<StopOutcome> {
    const { runId, execution, peerId } = record;
    const id = randomUUID();
    await this.deps.control.send(peerId, { kind: 'stop', id, runId, execution });
    const result = await this.deps.control.waitForAck(id, this.deps.ackTimeoutMs);
    if (result.kind === 'timeout') {
      const seconds = this.deps.ackTimeoutMs / 1000;
      throw new AppError(
        'stop_not_acknowledged',
        503,
        `peer ${peerId} did not acknowledge the stop within ${seconds} s`,
      );
    }
    if (result.kind === 'malformed') {
      this.deps.logger.warn(
        { runId, peerId, raw: result.raw.slice(0, 200) },
        'malformed stop acknowledgement',
      );
      throw new AppError('stop_failed', 503, `peer ${peerId} sent a malformed acknowledgement`);
    }
    if (!result.ack.ok) {
      throw new AppError('stop_failed', 503, result.ack.message || `peer ${peerId} could not stop the run`);
    }
    this.deps.logger.info({ runId, execution, peerId }, 'running run stopped by its peer');
    return 'signalled';
  }
}
