import { z } from 'zod';
import { RemoteRunState } from '../runs/run-state';
import { runIdFromEventType, type StatusPush } from '../wire/ivis.schemas';
import { pushJobDataSchema, type PushJobData, type SinglePush } from './run.contract';

/**
 * The pushes that end a run execution, as one durable unit: whoever records
 * the final state (an agent, scheduler-sync) builds them here and hands them
 * to `RunStore.apply`, which writes them to the push outbox in the same
 * atomic step; any push worker then moves them to the `pushes` queue under
 * {@link finalPushJobId} and delivers them in order.
 */

/** How a run ended, as IVIS-core must learn it. */
export interface FinalReport {
  runId: number;
  execution: number;
  /** `stop` also sends `run/<id>/stop` after the fail emit. */
  event: 'succeed' | 'fail' | 'stop';
  startedAt?: string;
  finishedAt: string;
  /** The run's stdout as stored (capped). */
  output: string;
  /** The failure message (empty on success). */
  errMsg: string;
}

/** The job id of a run execution's final pushes: one final state per execution, so one id. */
export function finalPushJobId(runId: number, execution: number): string {
  return `final-${runId}-${execution}`;
}

/** The RJR's failure output format (ivis-protocol.md 3.3): the error, a blank line, then the log. */
export function failureOutput(error: string, output: string): string {
  return `${error}\n\nLog:\n${output}`;
}

/** An entry of the push outbox: a push job waiting to be put on the `pushes` queue. */
export const outboxEntrySchema = z.object({
  jobId: z.string().min(1),
  data: pushJobDataSchema,
  /** The peer whose agent wrote it: its next life queues it at start, without waiting for it to be due. */
  owner: z.string().optional(),
});
export type OutboxEntry = z.infer<typeof outboxEntrySchema>;

/**
 * The final status (RUN_FAIL carries `"<errMsg>\n\nLog:\n<output>"` as the
 * RJR does), then `run/<id>/success` or `run/<id>/fail`, then `run/<id>/stop`
 * for a stop: the order IVIS-core's UI expects.
 */
export function buildFinalPushes(report: FinalReport): OutboxEntry {
  const { runId, execution } = report;
  const succeeded = report.event === 'succeed';
  const status: StatusPush['status'] = {
    status: succeeded ? RemoteRunState.SUCCESS : RemoteRunState.RUN_FAIL,
    finished_at: report.finishedAt,
  };
  if (report.startedAt) status.started_at = report.startedAt;
  const output = succeeded ? report.output : failureOutput(report.errMsg, report.output);
  const pushes: SinglePush[] = [{ kind: 'status', body: { runId, status, output } }];
  if (succeeded) pushes.push({ kind: 'emit', body: { type: `run/${runId}/success` } });
  else pushes.push({ kind: 'emit', body: { type: `run/${runId}/fail`, data: report.errMsg } });
  if (report.event === 'stop') pushes.push({ kind: 'emit', body: { type: `run/${runId}/stop` } });
  return { jobId: finalPushJobId(runId, execution), data: { kind: 'sequence', runId, execution, pushes } };
}

/** The run a push job is about (for logs), or null when it names none. */
export function pushRunId(data: PushJobData): number | null {
  if (data.kind === 'sequence') return data.runId;
  if (data.kind === 'status') return data.body.runId;
  return runIdFromEventType(data.body.type);
}
