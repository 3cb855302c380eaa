import type { ApplyOptions, ApplyResult, FinalReport, OutboxDrainer, PushOutbox } from '@rps/common';
import type { Logger } from 'pino';
import type { RunLedger } from '../stores/run-ledger.store';
import type { RunReporter } from './run-reporter.service';

/** Test fault points (main.ts sets them from `RPS_TEST_FAULT`; production never does). */
export interface AgentFaults {
  /** Called right after a final state and its pushes were recorded, before anything is queued. */
  afterFinalRecord?: () => void;
}

export interface FinalPushesDeps {
  ledger: RunLedger;
  drainer: Pick<OutboxDrainer, 'drainOne'>;
  outbox: Pick<PushOutbox, 'remove'>;
  /** How long the final pushes wait for the run's in-run pushes still in flight. */
  waitMs: number;
  logger: Logger;
  faults?: AgentFaults;
}

/**
 * Ends a run and its reporting as one durable unit: the final state and its
 * pushes (status, then emits) are recorded in one atomic step (the push
 * outbox of `RunStore.apply`); then, once the run's in-run pushes have
 * settled, the agent queues them itself on the durable `pushes` queue, from
 * which whichever push worker is alive delivers them with retries. If the
 * agent dies in between, any push worker queues them from the outbox once
 * they are due (twice the wait: by then this agent's in-run pushes are over).
 *
 * The waiting and queueing after the record go on in the background
 * ({@link settled}): the record is what makes the pushes durable, and the
 * run's slot is free for the next run as soon as it is written.
 */
export class FinalPushes {
  private readonly deliveries = new Set<Promise<void>>();

  constructor(private readonly deps: FinalPushesDeps) {}

  /** Resolves once the final pushes recorded so far are queued (or left to the outbox drain). */
  async settled(): Promise<void> {
    while (this.deliveries.size > 0) await Promise.all([...this.deliveries]);
  }

  /**
   * Applies `report.event` (with `options`) and, in the same step, the
   * report's pushes as `reporter` builds them (none when the executor's own
   * runner pushes and `force` is off). Resolves once recorded; the pushes
   * are queued once the run's in-run pushes have settled ({@link settled}).
   */
  async end(
    report: FinalReport,
    options: ApplyOptions,
    reporter: RunReporter,
    force: boolean,
    /**
     * Runs once the change is recorded, before the pushes are queued (e.g. ending an orphaned job
     * first). `cancel` withdraws the recorded pushes: an rjr runner's own final push was
     * acknowledged meanwhile, so the agent's copy is not needed. Should the agent die before that
     * answer, the copy is delivered once due: a duplicate of the same status, never a lost one.
     */
    afterRecord?: () => Promise<void | 'cancel'>,
  ): Promise<ApplyResult> {
    const { ledger, waitMs, logger } = this.deps;
    const entry = reporter.finalPushes(report, force);
    const dueAt = Date.now() + 2 * waitMs;
    const applied = await ledger.apply(report.runId, report.event, {
      ...options,
      ...(entry ? { outbox: { ...entry, dueAt, owner: options.peerId } } : {}),
    });
    if (!applied.ok) return applied;
    if (entry) this.deps.faults?.afterFinalRecord?.();
    const after = await afterRecord?.();
    if (!entry) return applied;
    if (after === 'cancel') {
      await this.deps.outbox.remove(entry.jobId);
      return applied;
    }
    const delivery = (async () => {
      await reporter.quiesce(waitMs);
      try {
        await this.deps.drainer.drainOne(entry.jobId);
      } catch (err) {
        // Still in the outbox: the periodic drain (here or elsewhere) queues it once due.
        logger.warn({ runId: report.runId, err: String(err) }, 'final pushes not queued yet');
      }
    })();
    this.deliveries.add(delivery);
    void delivery.finally(() => this.deliveries.delete(delivery));
    return applied;
  }
}
