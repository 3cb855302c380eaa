import { Counter, Gauge, type Registry } from 'prom-client';

/** How a run ended on this agent, as counted in `rps_agent_runs_total`. */
export type RunOutcome = 'succeeded' | 'failed' | 'stopped' | 'requeued' | 'skipped' | 'abandoned';

/** The agent's own metrics, next to the default process metrics on `/metrics`. */
export class AgentMetrics {
  private readonly runs: Counter<'outcome'>;
  private readonly active: Gauge;
  private readonly pushFailures: Counter<'kind'>;

  constructor(registry: Registry, capacity: number) {
    this.runs = new Counter({
      name: 'rps_agent_runs_total',
      help: 'Run jobs handled by this agent, by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.active = new Gauge({
      name: 'rps_agent_active_runs',
      help: 'Runs being built or executed now',
      registers: [registry],
    });
    const slots = new Gauge({
      name: 'rps_agent_capacity',
      help: 'Runs this agent executes at once',
      registers: [registry],
    });
    slots.set(capacity);
    this.pushFailures = new Counter({
      name: 'rps_agent_push_failures_total',
      help: 'Pushes to IVIS-core that failed after every retry, by endpoint',
      labelNames: ['kind'],
      registers: [registry],
    });
  }

  runEnded(outcome: RunOutcome): void {
    this.runs.inc({ outcome });
  }

  setActive(count: number): void {
    this.active.set(count);
  }

  pushFailed(kind: string): void {
    this.pushFailures.inc({ kind });
  }
}
