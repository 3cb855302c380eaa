import { UnrecoverableError, type Job, type Processor, type Worker } from 'bullmq';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { pushRunId } from '../contracts/final-pushes.contract';
import { pushJobDataSchema, type SinglePush } from '../contracts/run.contract';

/** Whether an HTTP answer to a push is worth retrying: IVIS-core's 4xx answers are final, except timeouts and rate limits. */
export function isRetryablePushStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** How a service delivers one push (the agent's fetch client, scheduler-sync's undici request). */
export interface PushSender {
  /** One attempt; throws when IVIS-core (or the forwarder) did not answer 2xx. */
  send(push: SinglePush): Promise<void>;
  /** Whether an error is IVIS-core's final answer (a 4xx other than 408/429): retrying cannot help. */
  isFinal(err: unknown): boolean;
}

export interface PushProcessorDeps {
  sender: PushSender;
  logger: Logger;
  /** A push was given up (final answer, or retries exhausted); `kind` is status, emit, sequence or invalid. */
  onGivenUp: (kind: string) => void;
  /** Each delivered push, for metrics. */
  onDelivered?: (kind: SinglePush['kind']) => void;
  /** Each failed attempt that will be retried, for metrics. */
  onAttemptFailed?: (kind: SinglePush['kind']) => void;
}

/**
 * The `pushes` queue processor of every push worker. One attempt per job
 * attempt: the job's attempts and backoff are the retry policy, so a
 * retryable failure throws. A `sequence` goes out in order and records how
 * far it got in the job's progress, so a retry (or another worker after a
 * crash) resumes at the first push not delivered: status before emits, and
 * at most the one push in flight at a crash is repeated.
 */
export function createPushJobProcessor(deps: PushProcessorDeps): Processor<unknown, string> {
  return async (job: Job<unknown>) => {
    const parsed = pushJobDataSchema.safeParse(job.data);
    if (!parsed.success) {
      // Another version's producer wrote something this one cannot send: retrying will not help.
      throw new UnrecoverableError(`invalid push job data: ${parsed.error.issues[0]?.message ?? ''}`);
    }
    const data = parsed.data;
    if (data.kind !== 'sequence') {
      await sendOne(deps, job, data, { runId: pushRunId(data), alone: true });
      return 'delivered';
    }
    const from = typeof job.progress === 'number' ? job.progress : 0;
    for (let i = from; i < data.pushes.length; i++) {
      const push = data.pushes[i];
      if (push) await sendOne(deps, job, push, { runId: data.runId, alone: false });
      await job.updateProgress(i + 1);
    }
    return 'delivered';
  };
}

async function sendOne(
  deps: PushProcessorDeps,
  job: Job,
  push: SinglePush,
  { runId, alone }: { runId: number | null; alone: boolean },
): Promise<void> {
  try {
    await deps.sender.send(push);
    deps.onDelivered?.(push.kind);
  } catch (err) {
    if (!deps.sender.isFinal(err)) {
      deps.onAttemptFailed?.(push.kind);
      deps.logger.warn(
        { jobId: job.id, runId, kind: push.kind, attempt: job.attemptsMade + 1, err: errText(err) },
        'push failed, will retry',
      );
      throw err;
    }
    // A single push fails its job (the watcher logs it); in a sequence the others still go out.
    if (alone) throw new UnrecoverableError(errText(err));
    deps.onGivenUp(push.kind);
    deps.logger.error(
      { jobId: job.id, runId, kind: push.kind, err: errText(err) },
      'push given up: IVIS-core refused it',
    );
  }
}

/**
 * Logs at `error` (with the run id) and counts every push job that BullMQ
 * moved to `failed` for good: retries exhausted, a final answer, unreadable
 * data. The worker's `failed` event also fires for attempts that will be
 * retried; those have no `finishedOn`.
 */
export function watchGivenUpPushes(
  worker: Pick<Worker, 'on'>,
  deps: { logger: Logger; onGivenUp: (kind: string) => void },
): void {
  worker.on('failed', (job: Job | undefined, err: Error) => {
    if (job && !job.finishedOn) return;
    const parsed = pushJobDataSchema.safeParse(job?.data);
    const kind = parsed.success ? parsed.data.kind : 'invalid';
    deps.onGivenUp(kind);
    deps.logger.error(
      {
        jobId: job?.id,
        runId: parsed.success ? pushRunId(parsed.data) : undefined,
        kind,
        attempts: job?.attemptsMade,
        err: err.message,
      },
      'push given up',
    );
  });
}

/** `rps_pushes_given_up_total{kind}`: the same counter on every service that runs a push worker. */
export function createPushGivenUpCounter(registry: Registry): Counter<'kind'> {
  return new Counter({
    name: 'rps_pushes_given_up_total',
    help: 'Pushes to IVIS-core given up (retries exhausted or refused), by kind; each is logged at error',
    labelNames: ['kind'],
    registers: [registry],
  });
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
