import { runRequestBodySchema, type RunJobData } from '@rps/common';
import type { Logger } from 'pino';
import type { AgentOptions } from '../agent.options';
import type { Executor, ExecutorRun, PreparedRun, RunResult } from '../executors/executor';
import type { RunLedger } from '../stores/run-ledger.store';
import type { ActiveRun, ActiveRuns } from './active-runs';
import type { AgentMetrics, RunOutcome } from './agent.metrics';
import type { FinalPushes } from './final-pushes.service';
import { finalAcknowledged } from './final-ack';
import type { OrphanRuns } from './orphan-runs.service';
import { OutputRecorder } from './output-recorder.service';
import { claimRun } from './run-claim.service';
import { MESSAGES, type ReporterFactory } from './run-reporter.factory';
import type { RunMarks } from './run-timings';
import type { RunReporter } from './run-reporter.service';

export interface RunLifecycleDeps {
  ledger: RunLedger;
  executor: Executor;
  active: ActiveRuns;
  reporters: ReporterFactory;
  orphans: OrphanRuns;
  finals: FinalPushes;
  metrics: AgentMetrics;
  options: Pick<AgentOptions, 'maxOutputBytes' | 'outputFlushMs'>;
  peerId: string;
  logger: Logger;
}

/** `requeued`: the caller must put the job back in the queue (the run is queued again). */
export type ProcessOutcome = RunOutcome;

/**
 * One run job from claim to final push: claim (dispatch), build, `start`
 * compare-and-set right before the job process starts (so a run starts at
 * most once, whoever else raced for it), run, record the final state together
 * with its pushes (FinalPushes), queue them.
 */
export class RunLifecycle {
  constructor(private readonly deps: RunLifecycleDeps) {}

  /** `marks`: where the run's time goes (run-timings.ts), marked as it goes. */
  async process(data: RunJobData, marks?: RunMarks): Promise<ProcessOutcome> {
    const { active, ledger, peerId, logger } = this.deps;
    const log = logger.child({ runId: data.runId, execution: data.execution });
    // A second delivery while this process still handles the run (its lock lapsed): the first one carries on.
    if (active.has(data.runId)) return this.count('skipped');
    const run = active.add(data.runId, data.execution);
    run.marks = marks;
    // Read while the claim goes on (one round trip less before the start); unused if the claim fails.
    const request = ledger.request(data.runId);
    request.catch(() => undefined);
    try {
      const claim = await claimRun(ledger, data, peerId, log, undefined, () => marks?.mark('ack'));
      marks?.mark('claim');
      if (!claim.ok) {
        log.info({ reason: claim.reason }, 'run job skipped');
        if (claim.orphan) await this.deps.orphans.close(claim.orphan, 'fail', MESSAGES.agentRestarted);
        return this.count('skipped');
      }
      return this.count(await this.execute(run, request, log));
    } finally {
      active.remove(run);
    }
  }

  private count(outcome: ProcessOutcome): ProcessOutcome {
    this.deps.metrics.runEnded(outcome);
    return outcome;
  }

  private async execute(
    run: ActiveRun,
    request: Promise<Buffer | null>,
    log: Logger,
  ): Promise<ProcessOutcome> {
    const loaded = await this.load(run, request);
    run.marks?.mark('load');
    if (typeof loaded === 'string') {
      const reporter = await this.bareReporter(run);
      return this.endUnstarted(run, 'fail', loaded, reporter);
    }
    const { exRun, reporter } = loaded;
    run.reporter = reporter;
    run.taskId = exRun.taskId;
    // Deleted while the request was loading.
    if (run.stop === 'delete') reporter.suppress();
    let prepared: PreparedRun;
    try {
      prepared = await this.deps.executor.prepare(exRun, run.abort.signal);
    } catch (err) {
      if (run.stop) return this.stoppedBeforeStart(run, reporter);
      log.warn({ err: errText(err) }, 'run build failed');
      return this.endUnstarted(run, 'fail', errText(err), reporter);
    }
    run.marks?.mark('prepare');
    try {
      if (run.stop) return await this.stoppedBeforeStart(run, reporter);
      return await this.runStarted(run, prepared, reporter, log);
    } finally {
      prepared.release();
    }
  }

  private async runStarted(run: ActiveRun, prepared: PreparedRun, reporter: RunReporter, log: Logger) {
    const { ledger, peerId } = this.deps;
    const startedAt = new Date().toISOString();
    // rjr: handed over (never to be started again) but built first, so IVIS-core sees QUEUED until onRunning.
    const phase = this.deps.executor.startsBuilding ? { phase: 'building' as const } : {};
    // `start` again after a lost reply counts as the start it was (RunLedger.start).
    const started = await ledger.start(run.runId, {
      execution: run.execution,
      peerId,
      fields: { startedAt, ...phase },
    });
    run.marks?.mark('start');
    if (!started.ok) {
      // Stopped, deleted or taken over meanwhile: whoever changed it reports it.
      log.info({ reason: started.reason }, 'run not started');
      reporter.suppress();
      return 'abandoned';
    }
    const recorder = new OutputRecorder({
      maxBytes: this.deps.options.maxOutputBytes,
      flushMs: this.deps.options.outputFlushMs,
      append: (text) => ledger.appendOutput(run.runId, run.execution, text),
      emit: (chunks) => reporter.output(chunks),
      capped: () => reporter.outputCapped(),
      logger: log,
    });
    const onRunning = (at: string) => {
      ledger
        .markRunning(run.runId, run.execution, at)
        .catch((err: unknown) => log.warn({ err: errText(err) }, 'running phase not recorded'));
    };
    run.handle = prepared.start({ onOutput: (chunk) => recorder.write(chunk), onRunning });
    run.marks?.mark('spawn');
    run.phase = 'running';
    log.info('run started');
    reporter.running(startedAt);
    reporter.startTokenRefresh();
    // A stop that arrived between the compare-and-set and the spawn.
    if (run.stop) run.handle.stop();
    const result = await run.handle.done;
    run.phase = 'finishing';
    await recorder.close();
    run.marks?.mark('job');
    return this.endStarted(run, result, { startedAt, output: recorder.text() }, reporter, log);
  }

  private async endStarted(
    run: ActiveRun,
    result: RunResult,
    seen: { startedAt: string; output: string },
    reporter: RunReporter,
    log: Logger,
  ): Promise<ProcessOutcome> {
    // A job runner that pushes by itself (rjr) may have ended and pushed SUCCESS before a stop reached it.
    const runnerSucceeded = result.succeeded && !this.deps.executor.agentPushes && run.stop !== 'delete';
    const event = runnerSucceeded
      ? 'succeed'
      : run.stop === 'stop' || run.stop === 'delete'
        ? 'stop'
        : run.stop === 'shutdown' || !result.succeeded
          ? 'fail'
          : 'succeed';
    const prefix = run.stop === 'shutdown' ? MESSAGES.shutdown : run.stop ? MESSAGES.cancelled : '';
    // A job runner (rjr) already says "Run Cancelled" in its own message.
    const errMsg =
      event === 'succeed'
        ? ''
        : result.errMsg.includes(prefix.trim())
          ? result.errMsg
          : prefix + result.errMsg;
    const finishedAt = new Date().toISOString();
    const applied = await this.deps.finals.end(
      {
        runId: run.runId,
        execution: run.execution,
        event,
        startedAt: seen.startedAt,
        finishedAt,
        output: seen.output,
        errMsg,
      },
      {
        execution: run.execution,
        peerId: this.deps.peerId,
        fields: { finishedAt, error: errMsg, reason: event === 'succeed' ? '' : firstLine(errMsg) },
      },
      reporter,
      // rjr: the runner's own final push is never retried, so the agent records its own copy too
      // and withdraws it once IVIS-core has acknowledged the runner's (runnerPushAcknowledged).
      result.needsFinalPush === true || result.pushUnlessDeletedWithinMs !== undefined,
      result.needsFinalPush !== true && result.pushUnlessDeletedWithinMs !== undefined
        ? async () => ((await this.runnerPushAcknowledged(run, result, log)) ? 'cancel' : undefined)
        : undefined,
    );
    run.marks?.mark('final');
    if (!applied.ok) {
      log.warn({ reason: applied.reason }, 'final state refused; not pushing');
      reporter.suppress();
      return 'abandoned';
    }
    log.info({ state: applied.state }, 'run ended');
    return event === 'succeed' ? 'succeeded' : event === 'stop' ? 'stopped' : 'failed';
  }

  /** rjr: true unless the runner's own final push (never retried) went unacknowledged by IVIS-core. */
  private async runnerPushAcknowledged(run: ActiveRun, result: RunResult, log: Logger): Promise<boolean> {
    const withinMs = result.pushUnlessDeletedWithinMs;
    if (withinMs === undefined) return true;
    const acknowledged = await finalAcknowledged(this.deps.ledger, run.runId, run.execution, withinMs);
    if (!acknowledged) log.warn({ withinMs }, 'job runner final push unacknowledged; pushing it');
    return acknowledged;
  }

  private async stoppedBeforeStart(run: ActiveRun, reporter: RunReporter): Promise<ProcessOutcome> {
    if (run.stop === 'shutdown') {
      const requeued = await this.deps.ledger.apply(run.runId, 'requeue', {
        execution: run.execution,
        peerId: this.deps.peerId,
      });
      return requeued.ok ? 'requeued' : 'abandoned';
    }
    return this.endUnstarted(run, 'stop', MESSAGES.cancelledBeforeStart, reporter);
  }

  /** A run that never started ends here (build failure, stop while building, unreadable request). */
  private async endUnstarted(run: ActiveRun, event: 'fail' | 'stop', errMsg: string, reporter: RunReporter) {
    const finishedAt = new Date().toISOString();
    // Forced: a job runner (rjr) never saw this run, so only the agent can tell IVIS-core.
    const applied = await this.deps.finals.end(
      { runId: run.runId, execution: run.execution, event, finishedAt, output: '', errMsg },
      {
        execution: run.execution,
        peerId: this.deps.peerId,
        fields: { finishedAt, error: errMsg, reason: firstLine(errMsg) },
      },
      reporter,
      true,
    );
    if (!applied.ok) return 'abandoned';
    return event === 'stop' ? 'stopped' : 'failed';
  }

  /**
   * The run's request body (`request`, read during the claim), parsed; a
   * string is the failure message. A run deleted since the claim is caught
   * by the `start` compare-and-set.
   */
  private async load(
    run: ActiveRun,
    request: Promise<Buffer | null>,
  ): Promise<{ exRun: ExecutorRun; reporter: RunReporter } | string> {
    let raw: Buffer | null;
    try {
      raw = await request;
    } catch {
      // The read failed (Redis gone meanwhile): once more, now that the run is ours.
      raw = await this.deps.ledger.request(run.runId);
    }
    if (!raw) return 'Remote run failed: the run request is missing';
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      return 'Remote run failed: the run request is not JSON';
    }
    const parsed = runRequestBodySchema.safeParse(json);
    if (!parsed.success)
      return `Remote run failed: invalid run request (${parsed.error.issues[0]?.message ?? ''})`;
    const body = parsed.data;
    const exRun: ExecutorRun = {
      runId: run.runId,
      execution: run.execution,
      taskId: Number(body.taskId),
      jobId: Number(body.jobId),
      body,
      raw,
    };
    const accessToken =
      typeof body.accessToken === 'string' && body.accessToken !== '' ? body.accessToken : null;
    const reporter = this.deps.reporters.create({
      runId: run.runId,
      jobId: exRun.jobId,
      accessToken,
      silent: !this.deps.executor.agentPushes,
    });
    return { exRun, reporter };
  }

  private async bareReporter(run: ActiveRun): Promise<RunReporter> {
    const record = await this.deps.ledger.get(run.runId);
    return this.deps.reporters.create({
      runId: run.runId,
      jobId: record?.jobId ?? 0,
      accessToken: null,
      silent: !this.deps.executor.agentPushes,
    });
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function firstLine(text: string): string {
  return text.split('\n').find((line) => line.trim() !== '') ?? '';
}
