import { Histogram, type Registry } from 'prom-client';

/**
 * The steps of one run job on an agent, in order; each is timed from the
 * previous mark (the first from the job's creation by the gateway, on the
 * wall clock):
 *
 * - `queue`: job added -> the processor has it (BullMQ pickup);
 * - `ack`: the `dispatch` compare-and-set, retried while the gateway has not
 *   acknowledged the submit (one script: run-claim-3.lua);
 * - `claim`: taking over a re-delivered job (usually nothing);
 * - `load`: reading and validating the run request;
 * - `prepare`: task cache lookup (or build), the run folder;
 * - `start`: the `start` compare-and-set and its `running` event;
 * - `spawn`: starting the job process;
 * - `job`: the job process, until it exited and its output was flushed;
 * - `final`: the final state recorded with its pushes (their delivery goes on
 *   in the background: final-pushes.service.ts);
 * - `release`: the processor returned, BullMQ completed the job (slot free).
 */
export const RUN_PHASES = [
  'queue',
  'ack',
  'claim',
  'load',
  'prepare',
  'start',
  'spawn',
  'job',
  'final',
  'release',
] as const;
export type RunPhase = (typeof RUN_PHASES)[number];

/** Epoch milliseconds with sub-millisecond precision (comparable across processes of one host). */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

/** The marks of one run job; {@link RunTimings.finish} turns them into durations. */
export class RunMarks {
  private readonly at = new Map<RunPhase, number>();

  constructor(readonly queuedAt: number) {}

  /** `phase` ended now. */
  mark(phase: RunPhase): void {
    this.at.set(phase, preciseNow());
  }

  /** Durations (ms) of the phases that were marked, each from the latest mark before it. */
  durations(): Partial<Record<RunPhase, number>> {
    const out: Partial<Record<RunPhase, number>> = {};
    let previous = this.queuedAt;
    for (const phase of RUN_PHASES) {
      const at = this.at.get(phase);
      if (at === undefined) continue;
      out[phase] = Math.max(0, at - previous);
      previous = at;
    }
    return out;
  }
}

/** `rps_agent_run_phase_seconds{phase}`: where a run job's time goes on this agent (see {@link RUN_PHASES}). */
export class RunTimings {
  private readonly histogram: Histogram<'phase'>;

  constructor(registry: Registry) {
    this.histogram = new Histogram({
      name: 'rps_agent_run_phase_seconds',
      help: 'Time of each step of a run job on this agent (queue pickup, ack wait, claim, load, prepare, start, spawn, job, final, release)',
      labelNames: ['phase'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 60],
      registers: [registry],
    });
  }

  begin(queuedAt: number): RunMarks {
    return new RunMarks(queuedAt);
  }

  finish(marks: RunMarks): void {
    const durations = marks.durations();
    for (const phase of RUN_PHASES) {
      const ms = durations[phase];
      if (ms !== undefined) this.histogram.observe({ phase }, ms / 1000);
    }
  }
}
