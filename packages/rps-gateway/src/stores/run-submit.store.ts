import path from 'node:path';
import { Job, type Queue } from 'bullmq';
// BullMQ's own add script, used unchanged so the job is exactly what `queue.add` writes
// (its types sit in dist/esm, its CommonJS build in dist/cjs).
// @ts-expect-error -- no declaration next to the CommonJS file
import { addStandardJob as bullAddStandardJob } from 'bullmq/dist/cjs/scripts/addStandardJob-9';
import type { Redis } from 'ioredis';
import {
  appError,
  FINAL_STATES,
  loadLuaScript,
  runJobId,
  type RedisKeys,
  type RunJobData,
  type SubmitResult,
} from '@rps/common';
import { isStagedRunBody, type StagedRunBody } from './run-upload.store';

const addStandardJob = bullAddStandardJob as { content: string; keys: number };
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
 * The composite script: common's submit and BullMQ's add pasted into
 * `run-submit-enqueue-13.lua` as functions (their shebangs dropped: only the
 * composite's first line may carry one).
 */
function compositeScript(): { numberOfKeys: number; lua: string } {
  const composite = loadLuaScript(GATEWAY_LUA, 'run-submit-enqueue');
  const submit = loadLuaScript(COMMON_LUA, 'run-submit').lua.replace(/^#!.*\n/, '');
  // The composite unpacks the add's arguments and options itself (to set the job id).
  let add = addStandardJob.content.replace(/^#!.*\n/, '');
  for (const n of [1, 3]) {
    const unpack = `cmsgpack.unpack(ARGV[${n}])`;
    if (add.split(unpack).length !== 2)
      throw new Error(`BullMQ's addStandardJob changed: no single ${unpack}`);
    add = add.replace(unpack, () => `ARGV[${n}]`);
  }
  const lua = composite.lua
    .replace('--@include run-submit', () => submit)
    .replace('--@include addStandardJob', () => add);
  return { numberOfKeys: composite.numberOfKeys, lua };
}

/** The composite for a staged body (run-submit-staged-15.lua): the composite pasted in as a function. */
function stagedScript(): { numberOfKeys: number; lua: string } {
  const staged = loadLuaScript(GATEWAY_LUA, 'run-submit-staged');
  const composite = compositeScript().lua.replace(/^#!.*\n/, '');
  return {
    numberOfKeys: staged.numberOfKeys,
    lua: staged.lua.replace('--@include run-submit-enqueue', () => composite),
  };
}

type SubmitEnqueue = (...args: Array<string | Buffer | number>) => Promise<[string, string, string, string]>;

/**
 * Records a submitted run and adds its queue job in one atomic script (one
 * round trip): what `RunStore.submit` (pending) followed by
 * `RunQueueStore.enqueue` did in two. BullMQ builds the job's keys and
 * arguments itself (its `addJobToTransaction`, given a client that only
 * records the command), so only the job id and data, which depend on the
 * execution the submit decides, are set inside the script.
 */
export class RunSubmitStore {
  private readonly command: SubmitEnqueue;
  private readonly stagedCommand: SubmitEnqueue;

  constructor(
    redis: Redis,
    private readonly keys: RedisKeys,
    private readonly queue: Queue,
  ) {
    const name = 'rpsGatewaySubmitEnqueue';
    if (!(name in redis)) redis.defineCommand(name, compositeScript());
    this.command = (redis as unknown as Record<string, SubmitEnqueue>)[name]!.bind(redis);
    const staged = 'rpsGatewaySubmitStaged';
    if (!(staged in redis)) redis.defineCommand(staged, stagedScript());
    this.stagedCommand = (redis as unknown as Record<string, SubmitEnqueue>)[staged]!.bind(redis);
  }

  /**
   * `body` is the raw bytes, or a body an upload staged in Redis
   * (RunUploadStore), which the script renames into place; a staged body
   * Redis no longer holds whole answers 503 `redis_unavailable`.
   */
  async submitAndEnqueue(
    runId: number,
    body: Buffer | StagedRunBody,
    meta: { taskId: number; jobId: number },
    now = Date.now(),
  ): Promise<SubmitResult> {
    const bull = await this.bullArgs(runId);
    const staged = isStagedRunBody(body) ? body : null;
    const args = [
      this.keys.run(runId),
      this.keys.runRequest(runId),
      this.keys.runOutput(runId),
      this.keys.runIndex(),
      ...bull.keys,
      ...(staged ? [staged.stagedKey, staged.sealKey] : []),
      String(runId),
      staged ? '' : (body as Buffer),
      String(meta.taskId),
      String(meta.jobId),
      String(now),
      FINAL_STATES.join(','),
      '1',
      bull.args,
      bull.opts,
      ...(staged ? [String(staged.length)] : []),
    ];
    const [outcome, execution, state, pending] = staged
      ? await this.stagedCommand(...args).catch((err: unknown) => {
          if (err instanceof Error && err.message.startsWith('RPSSTAGED')) {
            throw appError(
              'redis_unavailable',
              'Redis lost the uploaded run body (restarted?); send it again',
              [{ path: 'redis', message: 'staged body lost' }],
            );
          }
          throw err;
        })
      : await this.command(...args);
    return { outcome, execution: Number(execution), state, pending: pending === '1' } as SubmitResult;
  }

  /** BullMQ's keys and msgpacked arguments of the add, as `queue.add` would send them (job id: a placeholder). */
  private async bullArgs(runId: number) {
    const placeholder = runJobId(runId, 0);
    const data: RunJobData = { runId, execution: 0 };
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
    return { keys: args.slice(0, 9) as string[], args: args[9]!, opts: args[11]! };
  }
}
