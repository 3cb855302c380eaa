import type { Queue, Worker } from 'bullmq';
import type { OutboxDrainer } from '@rps/common';
import type { Logger } from 'pino';
import type { AgentOptions } from './agent.options';
import type { ActiveRuns } from './services/active-runs';
import type { ControlService } from './services/control.service';
import type { IvisPushClient } from './services/ivis-push.client';
import type { OrphanRuns } from './services/orphan-runs.service';
import type { Registration } from './services/registration.service';

/** What the runtime does with a BullMQ worker (independent of its job types). */
export type WorkerControl = Pick<Worker, 'run' | 'pause' | 'isPaused' | 'close'>;

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
  options: Pick<AgentOptions, 'shutdownRunsTimeoutMs' | 'outboxDrainMs'>;
  logger: Logger;
}

/** Start, drain and ordered stop of a built agent. */
export class AgentRuntime {
  private accepting = true;
  private started = false;

  constructor(private readonly parts: AgentParts) {}

  /** Whether new run jobs may be processed (false once draining or stopping). */
  isAccepting(): boolean {
    return this.accepting;
  }

  async start(): Promise<void> {
    const { registration, orphans, control, runWorker, pushWorker, drainer, logger } = this.parts;
    await registration.register();
    // Before any new run: an earlier life's runs are settled first.
    await orphans.recover();
    // Final pushes an earlier life recorded but did not queue (killed in between): queued now.
    const left = await drainer.drainOwnedBy(this.parts.peerId);
    if (left > 0) logger.warn({ queued: left }, 'final pushes of an earlier agent life queued');
    await control.start();
    this.started = true;
    // Final pushes left in the outbox by any process that died (this agent's earlier life too).
    drainer.start(this.parts.options.outboxDrainMs);
    for (const worker of [runWorker, pushWorker]) {
      worker.run().catch((err: unknown) => logger.error({ err }, 'worker stopped with an error'));
    }
    registration.startHeartbeat();
  }

  /** Stops fetching runs; the runs in hand go on. */
  async pauseIntake(): Promise<void> {
    this.accepting = false;
    const worker = this.parts.runWorker;
    // doNotWaitActive: pausing must not wait for the runs in hand.
    if (this.started && !worker.isPaused()) await worker.pause(true);
  }

  async drain(reason: string): Promise<void> {
    this.parts.logger.info({ reason }, 'draining');
    await this.pauseIntake();
    await this.parts.registration.markDraining();
  }

  async stop(reason: string): Promise<void> {
    const { active, runWorker, pushClient, pushWorker, control, registration, queue, logger } = this.parts;
    const { drainer, pushQueue } = this.parts;
    logger.info({ reason, active: active.size }, 'agent stopping');
    await this.pauseIntake();
    for (const run of active.list()) active.requestStop(run.runId, 'shutdown');
    const idle = await this.runsEnded();
    if (!idle) logger.warn({ active: active.size }, 'runs did not end in time');
    await runWorker.close(!idle);
    await drainer.stop();
    pushClient.close();
    await pushWorker.close();
    await control.stop();
    await registration.deregister();
    await Promise.all([queue.close(), pushQueue.close()]);
    logger.info('agent stopped');
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
