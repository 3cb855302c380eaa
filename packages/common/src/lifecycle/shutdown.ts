import type { Logger } from 'pino';

/** One step of an ordered shutdown. */
export interface ShutdownStep {
  name: string;
  run: () => Promise<void>;
}

/**
 * Runs shutdown steps in the order they were added (STYLE.md rule 9: stop
 * intake, close workers, queues, Redis), each at most once, logging every
 * failure and carrying on with the next step so one stuck dependency cannot
 * keep the others open. Resolves true when every step succeeded.
 */
export class Shutdown {
  private readonly steps: ShutdownStep[] = [];
  private running: Promise<boolean> | undefined;

  constructor(private readonly logger: Logger) {}

  /** Adds a step; steps run in insertion order. */
  add(name: string, run: () => Promise<void>): this {
    this.steps.push({ name, run });
    return this;
  }

  /** Runs all steps once; later calls return the first run's result. */
  run(reason: string): Promise<boolean> {
    this.running ??= this.runSteps(reason);
    return this.running;
  }

  private async runSteps(reason: string): Promise<boolean> {
    this.logger.info({ reason }, 'shutting down');
    let ok = true;
    for (const step of this.steps) {
      try {
        await step.run();
      } catch (err) {
        ok = false;
        this.logger.error({ err, step: step.name }, 'shutdown step failed');
      }
    }
    this.logger.info({ ok }, 'shutdown complete');
    return ok;
  }
}

/** Options of {@link installProcessHandlers}. */
export interface ProcessHandlerOptions {
  /** Exit anyway after this long, even if a step hangs. */
  hardTimeoutMs?: number;
  proc?: Pick<NodeJS.Process, 'on' | 'exit'>;
}

/**
 * Wires SIGTERM/SIGINT to the shutdown (exit 0 when clean, 1 otherwise, with
 * a hard timeout), and an uncaught exception or unhandled rejection to a fatal
 * log and a non-zero exit. Only main.ts calls this.
 */
export function installProcessHandlers(
  shutdown: Shutdown,
  logger: Logger,
  { hardTimeoutMs = 10000, proc = process }: ProcessHandlerOptions = {},
): void {
  const stop = (reason: string, code: number) => {
    const timer = setTimeout(() => {
      logger.error({ hardTimeoutMs }, 'shutdown timed out, exiting');
      proc.exit(1);
    }, hardTimeoutMs);
    timer.unref();
    void shutdown.run(reason).then((ok) => proc.exit(ok ? code : 1));
  };
  proc.on('SIGTERM', () => stop('SIGTERM', 0));
  proc.on('SIGINT', () => stop('SIGINT', 0));
  proc.on('uncaughtException', (err: Error) => {
    logger.fatal({ err }, 'uncaught exception');
    stop('uncaughtException', 1);
  });
  proc.on('unhandledRejection', (err: unknown) => {
    logger.fatal({ err }, 'unhandled rejection');
    stop('unhandledRejection', 1);
  });
}

/**
 * Runs a service's `main` and turns a failure during start (a port in use,
 * Redis unreachable, a bad certificate) into one readable line on stderr and
 * exit code 1. The logger may not exist yet at that point, so it writes plain
 * text, in the same one-line style as config errors. Only main.ts calls this.
 */
export function runMain(
  service: string,
  main: () => Promise<void>,
  proc: Pick<NodeJS.Process, 'exit' | 'stderr'> = process,
): void {
  main().catch((err: unknown) => {
    proc.stderr.write(`${service} failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
    proc.exit(1);
  });
}
