import type { Queue, Worker } from 'bullmq';
import type { OutboxDrainer } from '@rps/common';
import type { Logger } from 'pino';
import type { AgentOptions } from './agent.options';
import type { Executor } from './executors/executor';
import type { ActiveRuns } from './services/active-runs';
import type { ControlService } from './services/control.service';
import type { FinalPushes } from './services/final-pushes.service';
import type { IvisPushClient } from './services/ivis-push.client';
import type { OrphanRuns } from './services/orphan-runs.service';
import type { Registration } from './services/registration.service';

/** What the runtime does with a BullMQ worker (independent of its job types). */
export type WorkerControl = Pick<Worker, 'run' | 'pause' | 'resume' | 'isPaused' | 'close'>;

/** The built parts the runtime starts and stops, in order. */
export interface AgentParts {
  peerId: string;
  registration: Registration;
  orphans: OrphanRuns;
  control: ControlService;
  runWorker: WorkerControl;
  pushWorker: WorkerControl;
  queue: Queue;
  pushQueue: Queue;
  drainer: Pick<OutboxDrainer, 'start' | 'stop' | 'drainOwnedBy'>;
  pushClient: IvisPushClient;
  active: ActiveRuns;
  executor: Pick<Executor, 'close'>;
  finals: Pick<FinalPushes, 'settled'>;
  options: Pick<AgentOptions, 'shutdownRunsTimeoutMs' | 'outboxDrainMs'>;
  logger: Logger;
}

/**
 * Start, drain, undrain and ordered stop of a built agent. The run worker
 * starts last, and only while the agent accepts runs: a drain (also one kept
 * from before a restart) or an operator's removal keeps it from fetching.
 */
export class AgentRuntime {
  private accepting = true;
  private started = false;
  private runWorkerStarted = false;
  private stopping = false;
  private removed = false;

  constructor(private readonly parts: AgentParts) {}

  /** Whether new run jobs may be processed (false once draining or stopping). */
  isAccepting(): boolean {
    return this.accepting;
  }

  async start(): Promise<void> {
    const { registration, orphans, control, pushWorker, drainer, logger } = this.parts;
    const registered = await registration.register();
    if (registered === 'removed') {
      // Nothing to do for a peer out of the pool; the admin listener still answers.
      this.accepting = false;
      this.removed = true;
      return;
    }
    if (registered === 'draining') {
      this.accepting = false;
      logger.info('drain kept from before the restart: taking no runs until undrain');
    }
    // Before any new run: an earlier life's runs are settled first, then the
    // commands that reached the stream while the agent was away (a task
    // deleted meanwhile, a drain) are carried out.
    await orphans.recover();
    // Final pushes an earlier life recorded but did not queue (killed in between): queued now.
    const left = await drainer.drainOwnedBy(this.parts.peerId);
    if (left > 0) logger.warn({ queued: left }, 'final pushes of an earlier agent life queued');
    await control.start();
    this.started = true;
    // Final pushes left in the outbox by any process that died (this agent's earlier life too).
    drainer.start(this.parts.options.outboxDrainMs);
    this.runWorker(pushWorker);
    if (this.accepting) this.startRunWorker();
    registration.startHeartbeat();
  }

  /** Stops fetching runs; the runs in hand go on. */
  async pauseIntake(): Promise<void> {
    this.accepting = false;
    const worker = this.parts.runWorker;
    // doNotWaitActive: pausing must not wait for the runs in hand.
    if (this.runWorkerStarted && !worker.isPaused()) await worker.pause(true);
  }

  async drain(reason: string): Promise<void> {
    this.parts.logger.info({ reason }, 'draining');
    await this.pauseIntake();
    await this.parts.registration.markDraining();
  }

  /** Takes runs again after a drain; false (nothing changed) while stopping or once removed. */
  async undrain(reason: string): Promise<boolean> {
    if (this.stopping || this.removed) return false;
    if (!(await this.parts.registration.markActive())) return false;
    this.parts.logger.info({ reason }, 'undrained');
    this.accepting = true;
    // Before start() finished (a command of the backlog) start() itself starts the worker.
    if (!this.started) return true;
    if (!this.runWorkerStarted) this.startRunWorker();
    else if (this.parts.runWorker.isPaused()) await this.parts.runWorker.resume();
    return true;
  }

  /** An operator removed the peer while it ran. */
  async removedByOperator(): Promise<void> {
    this.removed = true;
    await this.pauseIntake();
  }

  async stop(reason: string): Promise<void> {
    const { active, runWorker, pushClient, pushWorker, control, registration, queue, logger } = this.parts;
    const { drainer, pushQueue } = this.parts;
    this.stopping = true;
    logger.info({ reason, active: active.size }, 'agent stopping');
    await this.pauseIntake();
    for (const run of active.list()) active.requestStop(run.runId, 'shutdown');
    const idle = await this.runsEnded();
    if (!idle) logger.warn({ active: active.size }, 'runs did not end in time');
    await runWorker.close(!idle);
    // Final pushes of ended runs still waiting for their in-run pushes: queued before the queues close.
    await this.parts.finals.settled();
    await drainer.stop();
    pushClient.close();
    await pushWorker.close();
    await control.stop();
    await registration.markStopped();
    await Promise.all([queue.close(), pushQueue.close()]);
    this.parts.executor.close?.();
    logger.info('agent stopped');
  }

  private startRunWorker(): void {
    this.runWorkerStarted = true;
    this.runWorker(this.parts.runWorker);
  }

  private runWorker(worker: WorkerControl): void {
    worker.run().catch((err: unknown) => this.parts.logger.error({ err }, 'worker stopped with an error'));
  }

  private runsEnded(): Promise<boolean> {
    const { active, options } = this.parts;
    return Promise.race([
      active.whenIdle().then(() => true),
      new Promise<boolean>((resolve) =>
        setTimeout(() => resolve(false), options.shutdownRunsTimeoutMs).unref(),
      ),
    ]);
  }
}
