import path from 'node:path';
import { loadLuaScript, RUN_STATES, type RedisKeys, type RunState } from '@rps/common';
import type { Redis } from 'ioredis';

const UNINDEX = loadLuaScript(path.join(__dirname, '../../lua'), 'run-unindex');

interface IndexScripts {
  rpsRunUnindex(...args: Array<string | number>): Promise<number>;
}

/** The few fields of a run the periodic checks decide on; changes still go through RunStore. */
export interface RunSummary {
  runId: number;
  /** null when the index names a run whose record is gone. */
  state: RunState | null;
  execution: number;
  peerId: string;
  /** Last change (ms), the index score. */
  changedAt: number;
}

const CHUNK = 500;

function asState(value: string | null | undefined): RunState | null {
  return (RUN_STATES as readonly string[]).includes(value ?? '') ? (value as RunState) : null;
}

/**
 * Read-side access to `keys.runIndex()` for reconciliation and retention:
 * whole-index scans in pipelined chunks, so a tick costs a few round trips
 * rather than one per run.
 */
export class RunIndexStore {
  private readonly scripts: IndexScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {
    if (!('rpsRunUnindex' in redis)) redis.defineCommand('rpsRunUnindex', UNINDEX);
    this.scripts = redis as unknown as IndexScripts;
  }

  /** Every indexed run (optionally only those last changed at or before `maxScore`). */
  async scan(maxScore: number | '+inf' = '+inf'): Promise<RunSummary[]> {
    const flat = await this.redis.zrangebyscore(this.keys.runIndex(), '-inf', maxScore, 'WITHSCORES');
    const entries: Array<[number, number]> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) entries.push([Number(flat[i]), Number(flat[i + 1])]);
    const out: RunSummary[] = [];
    for (let i = 0; i < entries.length; i += CHUNK) {
      const chunk = entries.slice(i, i + CHUNK);
      const pipeline = this.redis.pipeline();
      for (const [runId] of chunk) pipeline.hmget(this.keys.run(runId), 'state', 'execution', 'peerId');
      const results = (await pipeline.exec()) ?? [];
      chunk.forEach(([runId, changedAt], j) => {
        const [err, value] = results[j] ?? [null, []];
        if (err) throw err;
        const [state, execution, peerId] = (value ?? []) as Array<string | null>;
        out.push({
          runId,
          state: asState(state),
          execution: Number(execution ?? 0),
          peerId: peerId ?? '',
          changedAt,
        });
      });
    }
    return out;
  }

  /** Whether the run's request body is still there (a queued run needs it to be executed). */
  async hasRequest(runId: number): Promise<boolean> {
    return (await this.redis.exists(this.keys.runRequest(runId))) === 1;
  }

  /** Drops an index entry whose record is gone; false when the run exists (again). */
  async unindex(runId: number): Promise<boolean> {
    return (
      (await this.scripts.rpsRunUnindex(this.keys.run(runId), this.keys.runIndex(), String(runId))) === 1
    );
  }
}
