import { controlCommandSchema, isFinalState, type ControlCommand } from '@rps/common';
import type { Logger } from 'pino';
import type { Executor } from '../executors/executor';
import type { ControlEntry, ControlStore } from '../stores/control.store';
import type { RunLedger } from '../stores/run-ledger.store';
import type { ActiveRuns } from './active-runs';
import type { OrphanRuns } from './orphan-runs.service';
import { MESSAGES } from './run-reporter.factory';

/** The answer to one command, before the peer id is added. */
export interface ControlReply {
  ok: boolean;
  message: string;
}

export interface ControlDeps {
  store: ControlStore;
  ledger: RunLedger;
  active: ActiveRuns;
  executor: Executor;
  orphans: OrphanRuns;
  drain: (reason: string) => Promise<void>;
  /** False when the agent cannot take runs again (stopping, removed). */
  undrain: (reason: string) => Promise<boolean>;
  peerId: string;
  blockMs: number;
  logger: Logger;
}

/** How long a task delete may take before its ack says "deferred" instead of "deleted". */
const TASK_DELETE_ACK_WAIT_MS = 200;

/**
 * Reads the peer's control stream and obeys it. Every command is answered on
 * its ack list (the gateway waits there for a few seconds) and acknowledged
 * in the stream (XACK) only once it is done, so a command interrupted by an
 * agent crash is read again by the next life of the agent.
 */
export class ControlService {
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly inflight = new Set<Promise<void>>();

  constructor(private readonly deps: ControlDeps) {}

  /**
   * Carries out, to the end, what waits on the stream before the agent takes
   * any run: its own unacknowledged entries, then everything that arrived
   * while it was away (a task deleted while the peer was stopped must be gone
   * before a new run could use the old build). Then starts the read loop.
   */
  async start(): Promise<void> {
    const { store, logger } = this.deps;
    await store.ensureGroup();
    this.running = true;
    for (const entry of await store.pending()) await this.process(entry, true);
    let backlog = 0;
    for (let batch = await store.backlog(); batch.length > 0; batch = await store.backlog()) {
      for (const entry of batch) await this.process(entry, true);
      backlog += batch.length;
    }
    if (backlog > 0) logger.info({ commands: backlog }, 'control backlog carried out');
    this.loop = this.readLoop();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await Promise.allSettled([...this.inflight]);
  }

  /** Carries out one command (exposed for tests and for SIGUSR2-like local triggers). */
  async handle(command: ControlCommand): Promise<ControlReply> {
    switch (command.kind) {
      case 'stop':
        return this.stopRun(command.runId, command.execution);
      case 'deleteRun': {
        const outcome = this.deps.active.requestStop(command.runId, 'delete');
        return {
          ok: true,
          message: outcome === 'not-here' ? 'run not active on this peer' : 'run stopped and forgotten',
        };
      }
      case 'deleteTask':
        await this.deps.executor.deleteTask(command.taskId);
        return { ok: true, message: 'task deleted' };
      case 'drain':
        await this.deps.drain('control command');
        return { ok: true, message: 'draining' };
      case 'undrain':
        return (await this.deps.undrain('control command'))
          ? { ok: true, message: 'taking runs again' }
          : { ok: false, message: 'not undrained: the agent is stopping or the peer was removed' };
    }
  }

  private async readLoop(): Promise<void> {
    while (this.running) {
      let entries: ControlEntry[];
      try {
        entries = await this.deps.store.next(this.deps.blockMs);
      } catch (err) {
        if (!this.running) break;
        this.deps.logger.warn({ err: String(err) }, 'control stream read failed');
        if (String(err).includes('NOGROUP')) await this.deps.store.ensureGroup().catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      for (const entry of entries) await this.process(entry);
    }
  }

  /** `settle`: wait until the command is done (start-up), not only until it is answered. */
  private async process(entry: ControlEntry, settle = false): Promise<void> {
    const { store, logger, peerId } = this.deps;
    let command: ControlCommand;
    try {
      command = controlCommandSchema.parse(JSON.parse(entry.command ?? 'null'));
    } catch (err) {
      // Unreadable (or trimmed) entries have nobody to answer; never let them block the stream.
      logger.warn({ entryId: entry.entryId, err: String(err) }, 'invalid control command dropped');
      await store.ack(entry.entryId).catch(() => undefined);
      return;
    }
    const log = logger.child({ command: command.kind, commandId: command.id });
    const work = this.handle(command).catch((err: unknown): ControlReply => {
      log.error({ err }, 'control command failed');
      return { ok: false, message: err instanceof Error ? err.message : String(err) };
    });
    // A task delete waits for the task's runs; the sender should not.
    const early =
      command.kind === 'deleteTask'
        ? await Promise.race([work, delay(TASK_DELETE_ACK_WAIT_MS).then(() => null)])
        : await work;
    const reply = early ?? { ok: true, message: 'task delete deferred until its runs on this peer end' };
    try {
      await store.reply({ id: command.id, peerId, ...reply });
      log.info(reply, 'control command answered');
    } catch (err) {
      log.warn({ err: String(err) }, 'control ack failed');
    }
    const finish = work
      .then(() => store.ack(entry.entryId))
      .then(
        () => undefined,
        () => undefined,
      );
    this.inflight.add(finish);
    void finish.finally(() => this.inflight.delete(finish));
    if (early || settle) await finish;
  }

  private async stopRun(runId: number, execution: number): Promise<ControlReply> {
    const outcome = this.deps.active.requestStop(runId, 'stop', execution);
    if (outcome === 'stopping') return { ok: true, message: 'stopping' };
    if (outcome === 'finishing') return { ok: true, message: 'run is already ending' };
    const record = await this.deps.ledger.get(runId);
    if (!record) return { ok: true, message: 'unknown run' };
    if (record.execution !== execution) return { ok: true, message: `execution ${execution} is over` };
    if (isFinalState(record.state)) return { ok: true, message: `run already ${record.state}` };
    if (record.peerId !== this.deps.peerId)
      return { ok: false, message: `run is not held by ${this.deps.peerId}` };
    // Held here on record, yet no process handles it (an earlier life's run): end it as asked.
    const closed = await this.deps.orphans.close(record, 'stop', MESSAGES.cancelled);
    return closed ? { ok: true, message: 'stopped' } : { ok: false, message: 'run changed meanwhile' };
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
