import type { RunHandle } from '../executors/executor';
import type { RunReporter } from './run-reporter.service';
import type { RunMarks } from './run-timings';

/**
 * Why a run is being ended from outside: `stop` (IVIS-core asked), `shutdown`
 * (the agent is going away), `delete` (the run was deleted: no more pushes).
 */
export type StopKind = 'stop' | 'shutdown' | 'delete';

/** A run this agent process is handling right now. */
export interface ActiveRun {
  readonly runId: number;
  readonly execution: number;
  phase: 'preparing' | 'running' | 'finishing';
  /** Aborts the build of a run that has not started. */
  readonly abort: AbortController;
  taskId?: number;
  handle?: RunHandle;
  reporter?: RunReporter;
  stop?: StopKind;
  /** Where the run's time goes (run-timings.ts). */
  marks?: RunMarks;
}

/** What {@link ActiveRuns.requestStop} did. */
export type StopOutcome = 'stopping' | 'finishing' | 'not-here';

/** The runs of this agent process, by run id; also the source of the active-runs gauge. */
export class ActiveRuns {
  private readonly runs = new Map<number, ActiveRun>();
  private idle: Array<() => void> = [];

  constructor(private readonly onChange: (count: number) => void = () => undefined) {}

  has(runId: number): boolean {
    return this.runs.has(runId);
  }

  get(runId: number): ActiveRun | undefined {
    return this.runs.get(runId);
  }

  get size(): number {
    return this.runs.size;
  }

  list(): ActiveRun[] {
    return [...this.runs.values()];
  }

  add(runId: number, execution: number): ActiveRun {
    const run: ActiveRun = { runId, execution, phase: 'preparing', abort: new AbortController() };
    this.runs.set(runId, run);
    this.onChange(this.runs.size);
    return run;
  }

  remove(run: ActiveRun): void {
    if (this.runs.get(run.runId) !== run) return;
    this.runs.delete(run.runId);
    this.onChange(this.runs.size);
    if (this.runs.size === 0) {
      for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  /**
   * Ends a run from outside: aborts its build, or signals its job. The first
   * reason wins, except that a delete always silences the run's pushes.
   * A run already recording its end is left alone.
   */
  requestStop(runId: number, kind: StopKind, execution?: number): StopOutcome {
    const run = this.runs.get(runId);
    if (!run || (execution !== undefined && run.execution !== execution)) return 'not-here';
    // Once the final state is being recorded, the run's last pushes still belong to IVIS-core.
    if (run.phase === 'finishing') return 'finishing';
    if (kind === 'delete') {
      run.reporter?.suppress();
      run.stop = 'delete';
    } else {
      run.stop ??= kind;
    }
    if (run.phase === 'preparing') run.abort.abort();
    else run.handle?.stop();
    return 'stopping';
  }

  /** Resolves when no run is active (or at once when none is). */
  whenIdle(): Promise<void> {
    if (this.runs.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }
}
