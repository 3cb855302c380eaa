import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  appError,
  FINAL_STATES,
  includeLuaScript,
  loadLuaScript,
  runJobId,
  type RedisKeys,
  type RunJobData,
  type SubmitResult,
} from '@rps/common';
import { GroupCommit } from './group-commit';
import { isStagedRunBody, UPLOAD_TTL_MS, type StagedRunBody } from './run-upload.store';

const GATEWAY_LUA = path.join(__dirname, '../../lua');
const COMMON_LUA = path.join(path.dirname(require.resolve('@rps/common')), '../lua');

/** BullMQ's job options of a run job (also what `RunQueueStore.enqueue` passes). */
export const RUN_JOB_OPTIONS = { removeOnComplete: true, removeOnFail: 1000 } as const;

interface BullBackend {
  addJobToTransaction(
    client: { runCommand(name: string, args: Array<string | Buffer | number>): Promise<unknown> },
    job: unknown,
    jobId: string,
    parentKeyOpts: { parentKey?: string; parentDependenciesKey: string },
  ): Promise<unknown>;
}

/**
 * The composite script: common's submit pasted into
 * `run-submit-enqueue-n.lua` as a function (its shebang dropped: only the
 * composite's first line may carry one).
 */
function compositeScript(): { lua: string } {
  const composite = loadLuaScript(GATEWAY_LUA, 'run-submit-enqueue');
  const submit = loadLuaScript(COMMON_LUA, 'run-submit').lua;
  return { lua: includeLuaScript(composite.lua, 'run-submit', submit) };
}

/** The composite for a staged body (run-submit-staged-15.lua): the composite pasted in as a function. */
function stagedScript(composite: string): { numberOfKeys: number | undefined; lua: string } {
  const staged = loadLuaScript(GATEWAY_LUA, 'run-submit-staged');
  return {
    numberOfKeys: staged.numberOfKeys,
    lua: includeLuaScript(staged.lua, 'run-submit-enqueue', composite),
  };
}

/** `run-submit-enqueue-n.lua`: key count first, then keys and arguments. */
type SubmitEnqueue = (...args: Array<string | Buffer | number>) => Promise<SubmitReply[]>;
/** `run-submit-staged-15.lua`: one run's reply. */
type SubmitStaged = (...args: Array<string | Buffer | number>) => Promise<SubmitReply>;
/** `{outcome, execution, state, pending}`, or `{'lost', ''}`. */
type SubmitReply = [string, string, string, string];

/** One run's submit, as the batch carries it. */
interface SubmitItem {
  runId: number;
  body: Buffer;
  taskId: number;
  jobId: number;
}

/** A run job's BullMQ keys and msgpacked add arguments and options (job id and timestamp set per run). */
interface BullTemplate {
  keys: string[];
  args: string | Buffer | number;
  opts: string | Buffer | number;
}

/** The queue keys of BullMQ's add, in the order run-submit-enqueue-n.lua reads them (its KEYS[2..10]). */
const BULL_ADD_KEYS = ['wait', 'paused', 'meta', 'id', 'completed', 'delayed', 'active', 'events', 'marker'];

/**
 * Group commit limits: enough runs to share a script call, few enough bytes
 * not to hold Redis long. Two batches in Redis at a time: a run arriving
 * while one is there goes at the end of its turn instead of waiting for it
 * (7 of 9 A/B pairs faster than with one: docs/gateway.md, on group commits).
 */
const BATCH = { maxItems: 64, maxBytes: 1024 * 1024, maxInFlight: 2 };

/**
 * Records submitted runs and adds their queue jobs in one atomic script per
 * batch (group commit, see {@link GroupCommit}): what `RunStore.submit`
 * (pending) followed by `RunQueueStore.enqueue` did in two round trips per
 * run. The bodies go in the same MULTI, each SET under a staging key ahead
 * of the script, which moves it into place. BullMQ builds the job's keys,
 * arguments and options itself (its `addJobToTransaction`, given a client
 * that only records the command), once; the script writes what BullMQ's add
 * writes for them, with the job id, data and timestamp that depend on the
 * run and the execution the submit decides.
 */
export class RunSubmitStore {
  private readonly name = 'rpsGatewaySubmitEnqueue';
  private readonly command: SubmitEnqueue;
  private readonly stagedCommand: SubmitStaged;
  private readonly batches: GroupCommit<SubmitItem, SubmitResult>;
  private template: Promise<BullTemplate> | null = null;
  /** Names this store's staging keys (`RedisKeys.runUpload`): unique per process, then counted. */
  private readonly stagingPrefix = randomUUID();
  private staged = 0;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly queue: Queue,
    /** Told the size of each batch sent (metrics). */
    onBatch?: (size: number) => void,
  ) {
    const name = this.name;
    const staged = 'rpsGatewaySubmitStaged';
    if (!(name in redis) || !(staged in redis)) {
      const composite = compositeScript();
      if (!(name in redis)) redis.defineCommand(name, composite);
      if (!(staged in redis)) redis.defineCommand(staged, stagedScript(composite.lua));
    }
    this.command = (redis as unknown as Record<string, SubmitEnqueue>)[name]!.bind(redis);
    this.stagedCommand = (redis as unknown as Record<string, SubmitStaged>)[staged]!.bind(redis);
    this.batches = new GroupCommit((items) => this.sendBatch(items), {
      ...BATCH,
      sizeOf: (item) => item.body.length,
      onBatch,
    });
  }

  /**
   * Records the run as pending with its job; resolves with what the submit
   * did. Rejects when the batch's command failed (every run of it). `body` is the raw
   * bytes (group-committed with other runs), or a body an upload staged in
   * Redis (RunUploadStore), which its own script renames into place; a
   * staged body Redis no longer holds whole answers 503 `redis_unavailable`.
   */
  submitAndEnqueue(
    runId: number,
    body: Buffer | StagedRunBody,
    meta: { taskId: number; jobId: number },
  ): Promise<SubmitResult> {
    if (isStagedRunBody(body)) return this.submitStaged(runId, body, meta);
    return this.batches.run({ runId, body, taskId: meta.taskId, jobId: meta.jobId });
  }

  /**
   * Checks, before any run, that BullMQ still builds a run job's add the way
   * the submit script writes it: the keys in their order (here) and no
   * argument or option the script does not know (the script's own check,
   * run for a batch of no runs, which writes nothing). Rejects with what
   * differs; the gateway's start calls it, so a BullMQ upgrade that changed
   * the add stops the gateway instead of writing jobs the agents cannot read.
   */
  async checkBullShape(): Promise<void> {
    const { keys, args } = await this.scriptArgs([], []);
    await this.command(keys.length, ...keys, ...args);
  }

  private async submitStaged(
    runId: number,
    body: StagedRunBody,
    meta: { taskId: number; jobId: number },
  ): Promise<SubmitResult> {
    const { keys, args } = await this.scriptArgs([{ runId, ...meta }], [body.stagedKey]);
    const reply = await this.stagedCommand(...keys, body.sealKey, ...args, String(body.length));
    const result = submitResult(reply, 'Redis lost the uploaded run body (restarted?); send it again');
    if (result instanceof Error) throw result;
    return result;
  }

  /**
   * One MULTI: each body SET under its own staging key, then the composite,
   * which renames each into place (Redis spends about twice as long on a
   * body written from inside Lua). A refused MULTI (EXECABORT: out of
   * memory, say) rejects with the reason Redis gave; a script Redis no
   * longer holds (SCRIPT FLUSH, a restart between two batches) is sent again
   * outside the MULTI, where ioredis loads it: the bodies are staged by then.
   */
  private async sendBatch(items: SubmitItem[]): Promise<Array<SubmitResult | Error>> {
    const stagedKeys = items.map(() => this.keys.runUpload(`${this.stagingPrefix}.${++this.staged}`));
    const { keys, args } = await this.scriptArgs(items, stagedKeys);
    const multi = this.redis.multi();
    items.forEach((item, i) => multi.set(stagedKeys[i]!, item.body, 'PX', UPLOAD_TTL_MS));
    // Queued on the MULTI (its reply comes with the EXEC's).
    (multi as unknown as Record<string, (...a: Array<string | Buffer | number>) => unknown>)[this.name]!(
      keys.length,
      ...keys,
      ...args,
    );
    const replies = await multi.exec().catch((err: unknown) => {
      // ioredis keeps the replies that made Redis discard the transaction.
      const previous = (err as { previousErrors?: unknown[] }).previousErrors?.[0];
      throw previous instanceof Error ? previous : err;
    });
    if (!replies) throw new Error('the submit MULTI was discarded');
    const failed = replies.slice(0, items.length).find(([err]) => err)?.[0];
    if (failed) throw failed;
    const [scriptErr, scriptReply] = replies[items.length]!;
    let runs = scriptReply as SubmitReply[];
    if (scriptErr) {
      if (!scriptErr.message.startsWith('NOSCRIPT')) {
        // No run of the batch will start (none recorded, or left pending): drop its staged bodies now, not at their TTL.
        this.redis.del(...stagedKeys).catch(() => undefined);
        throw scriptErr;
      }
      runs = await this.command(keys.length, ...keys, ...args);
    }
    return runs.map((reply) =>
      submitResult(reply, 'Redis lost the run body before its submit; send it again'),
    );
  }

  /** run-submit-enqueue-n.lua's keys and arguments for `items`, whose bodies are staged under `stagedKeys`. */
  private async scriptArgs(items: Array<Omit<SubmitItem, 'body'>>, stagedKeys: string[]) {
    const bull = await (this.template ??= this.bullTemplate().catch((err: unknown) => {
      this.template = null;
      throw err;
    }));
    const keys: string[] = [this.keys.runIndex(), ...bull.keys];
    const args: Array<string | Buffer | number> = [
      FINAL_STATES.join(','),
      '1',
      String(Date.now()),
      bull.args,
      bull.opts,
    ];
    items.forEach((item, i) => {
      const { runId } = item;
      keys.push(
        this.keys.run(runId),
        this.keys.runRequest(runId),
        this.keys.runOutput(runId),
        stagedKeys[i]!,
      );
      args.push(String(runId), String(item.taskId), String(item.jobId));
    });
    return { keys, args };
  }

  /** BullMQ's keys and msgpacked arguments of a run job's add, as `queue.add` would send them (job id: a placeholder). */
  private async bullTemplate(): Promise<BullTemplate> {
    const placeholder = runJobId(0, 0);
    const data: RunJobData = { runId: 0, execution: 0 };
    const job = new Job(this.queue, 'run', data, { ...RUN_JOB_OPTIONS, jobId: placeholder }, placeholder);
    const jobData = job.asJSON();
    (job as unknown as { validateOptions(j: unknown): void }).validateOptions(jobData);
    let sent: Array<string | Buffer | number> | null = null;
    const recorder = {
      runCommand: (_name: string, args: Array<string | Buffer | number>) => {
        sent = args;
        return Promise.resolve(placeholder);
      },
    };
    const backend = (this.queue as unknown as { backend: BullBackend }).backend;
    await backend.addJobToTransaction(recorder, jobData, placeholder, { parentDependenciesKey: '' });
    const args = sent as Array<string | Buffer | number> | null;
    if (!args || args.length !== 12) throw new Error('BullMQ add arguments not as expected');
    const keys = args.slice(0, 9) as string[];
    // run-submit-enqueue-n.lua takes the queue's keys by position.
    const queueKeys = this.queue.keys as Record<string, string>;
    const expected = BULL_ADD_KEYS.map((name) => queueKeys[name]);
    if (keys.some((key, i) => key !== expected[i])) {
      throw new Error(`BullMQ's add keys are not ${BULL_ADD_KEYS.join(', ')}: ${keys.join(', ')}`);
    }
    return { keys, args: args[9]!, opts: args[11]! };
  }
}

/** One run's reply; `lost` (its staged body gone) answers 503 `redis_unavailable` with `lostMessage`. */
function submitResult(
  [outcome, execution, state, pending]: SubmitReply,
  lostMessage: string,
): SubmitResult | Error {
  if (outcome === 'lost') {
    return appError('redis_unavailable', lostMessage, [{ path: 'redis', message: 'staged body lost' }]);
  }
  return { outcome, execution: Number(execution), state, pending: pending === '1' } as SubmitResult;
}
