import { z } from 'zod';
import { RUN_STATES } from '../runs/run-state';
import { emitPushSchema, statusPushSchema } from '../wire/ivis.schemas';

/**
 * The run record, as stored in the hash at `keys.run(runId)` (values are
 * strings in Redis; `''` means unset). Only {@link RunStore} writes it, and
 * only through the state machine (`runs/run-state.ts`).
 */
export const runRecordSchema = z.object({
  runId: z.coerce.number().int().nonnegative(),
  state: z.enum(RUN_STATES),
  /** Increments each time IVIS-core submits the run anew after it ended; BullMQ job ids carry it. */
  execution: z.coerce.number().int().min(1),
  /** The peer that holds (or held) the run; '' while queued. */
  peerId: z.string().default(''),
  taskId: z.coerce.number().int(),
  jobId: z.coerce.number().int(),
  createdAt: z.coerce.number().int(),
  updatedAt: z.coerce.number().int(),
  startedAt: z.string().default(''),
  finishedAt: z.string().default(''),
  /** The `error` field of the status answer (failure message shown in IVIS). */
  error: z.string().default(''),
  /** Why the run is in its state, for operators (e.g. "peer peer-2 lost"). */
  reason: z.string().default(''),
  /**
   * Redis time (ms) since when the execution waits for the gateway's
   * acknowledgement of its submit; '' once acknowledged (and on records
   * older than the field). Agents never start a pending run.
   */
  pendingSince: z.string().default(''),
  /**
   * `building`: the run is `running` for the state machine (handed to a job
   * runner, so it may execute and must never be started again) but that
   * runner is still building it, so IVIS-core sees QUEUED; '' otherwise.
   */
  phase: z.enum(['', 'building']).catch(''),
});
/** The parsed run record. */
export type RunRecord = z.infer<typeof runRecordSchema>;

/** Data of a job on the `runs` queue: which run and which execution of it. */
export const runJobDataSchema = z.object({
  runId: z.number().int().nonnegative(),
  execution: z.number().int().min(1),
});
export type RunJobData = z.infer<typeof runJobDataSchema>;

/** The BullMQ job id of one execution (BullMQ forbids ':' in custom ids). */
export function runJobId(runId: number, execution: number): string {
  return `run-${runId}-${execution}`;
}

/**
 * A command on a peer's control stream (`keys.peerControl(peerId)`). Durable:
 * a peer that is offline reads it when it returns.
 * - `stop`: stop the run if this peer runs that execution (acknowledged).
 * - `deleteRun`: the run was deleted; stop it if running, forget it.
 * - `deleteTask`: remove the task's build directory and cache.
 * - `drain`: take no new runs, finish current ones; remembered across restarts.
 * - `undrain`: take runs again (undoes `drain` and SIGUSR2).
 */
export const controlCommandSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('stop'),
    id: z.string().min(1),
    runId: z.number().int(),
    execution: z.number().int(),
  }),
  z.object({ kind: z.literal('deleteRun'), id: z.string().min(1), runId: z.number().int() }),
  z.object({ kind: z.literal('deleteTask'), id: z.string().min(1), taskId: z.number().int() }),
  z.object({ kind: z.literal('drain'), id: z.string().min(1) }),
  z.object({ kind: z.literal('undrain'), id: z.string().min(1) }),
]);
export type ControlCommand = z.infer<typeof controlCommandSchema>;

/** The acknowledgement an agent LPUSHes to `keys.controlAck(command.id)`. */
export const controlAckSchema = z.object({
  id: z.string().min(1),
  peerId: z.string().min(1),
  ok: z.boolean(),
  message: z.string().default(''),
});
export type ControlAck = z.infer<typeof controlAckSchema>;

/** One push to IVIS-core: a status (2.3) or an emit (2.4). */
export const singlePushSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('status'), body: statusPushSchema }),
  z.object({ kind: z.literal('emit'), body: emitPushSchema }),
]);
export type SinglePush = z.infer<typeof singlePushSchema>;

/**
 * Job data on the `pushes` queue, delivered through the forwarder's trusted
 * route by whichever consumer is up (peer-agents, scheduler-sync), with
 * retries: a single push (a queued run stopped by the gateway), or a
 * `sequence`, the pushes that end one run execution (final status, then its
 * emits), delivered in order by one job so nothing overtakes the status
 * (ivis-protocol.md 2.6); a retried job resumes after the last push delivered.
 */
export const pushJobDataSchema = z.discriminatedUnion('kind', [
  ...singlePushSchema.options,
  z.object({
    kind: z.literal('sequence'),
    runId: z.number().int().nonnegative(),
    execution: z.number().int().min(1),
    pushes: z.array(singlePushSchema).min(1),
  }),
]);
export type PushJobData = z.infer<typeof pushJobDataSchema>;

/**
 * BullMQ options of every push job, whoever adds it: retried with exponential
 * backoff, and kept once finished, because the job id (derived from run and
 * execution) is what makes a repeat or a repair a no-op; scheduler-sync's
 * retention trims finished jobs after `scheduler.retentionMs`.
 */
export function pushJobOptions(jobId: string, retry: { attempts: number; backoffMs: number }) {
  return {
    jobId,
    attempts: retry.attempts,
    backoff: { type: 'exponential', delay: retry.backoffMs },
    removeOnComplete: false,
    removeOnFail: false,
  };
}

/** A message on `keys.runEvents()`: a run changed state (a hint for subscribers; the record is the truth). */
export const runStateMessageSchema = z.object({
  runId: z.number().int(),
  execution: z.number().int(),
  state: z.enum(RUN_STATES),
  peerId: z.string(),
  at: z.number().int(),
});
export type RunStateMessage = z.infer<typeof runStateMessageSchema>;

/** The consumer group every agent uses on its own control stream. */
export const CONTROL_GROUP = 'agent';
/** Control streams are trimmed to about this many entries (XADD MAXLEN ~). */
export const CONTROL_STREAM_MAXLEN = 10_000;
/** How long an acknowledgement list lives (seconds) if nobody pops it. */
export const CONTROL_ACK_TTL_S = 60;
