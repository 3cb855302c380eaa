import path from 'node:path';
import type { Redis } from 'ioredis';
import {
  includeLuaScript,
  loadLuaScript,
  type AckResult,
  type RedisKeys,
  type RunStateMessage,
} from '@rps/common';
import { GroupCommit } from './group-commit';

const GATEWAY_LUA = path.join(__dirname, '../../lua');
const COMMON_LUA = path.join(path.dirname(require.resolve('@rps/common')), '../lua');

/** `run-acknowledge-batch-n.lua` with common's run-acknowledge-1.lua pasted in. */
function batchScript(): { lua: string } {
  const batch = loadLuaScript(GATEWAY_LUA, 'run-acknowledge-batch');
  const acknowledge = loadLuaScript(COMMON_LUA, 'run-acknowledge').lua;
  return { lua: includeLuaScript(batch.lua, 'run-acknowledge', acknowledge) };
}

type AcknowledgeBatch = (...args: Array<string | number>) => Promise<AckResult[]>;

interface AckItem {
  runId: number;
  execution: number;
  windowMs: number;
  /** Announced on the run events channel when acknowledged (null: nothing to announce). */
  event: RunStateMessage | null;
}

/** Acknowledgements are a few bytes each: a batch is bounded by count only. Two in Redis at a time, as the submits. */
const BATCH = { maxItems: 128, maxBytes: Number.MAX_SAFE_INTEGER, maxInFlight: 2 };

/**
 * The gateway's acknowledgements of pending submits (common's
 * run-acknowledge-1.lua: the execution becomes startable unless the
 * window has passed on Redis's clock), batched by group commit like the
 * submits they follow, with the run's `queued` event published in the same
 * script, and the execution on the run's acknowledgement channel (an agent
 * whose claim waits for it listens there).
 */
export class RunAckStore {
  private readonly command: AcknowledgeBatch;
  private readonly batches: GroupCommit<AckItem, AckResult>;

  constructor(
    redis: Redis,
    private readonly keys: RedisKeys,
    /** Told the size of each batch sent (metrics). */
    onBatch?: (size: number) => void,
  ) {
    const name = 'rpsGatewayAcknowledgeBatch';
    if (!(name in redis)) redis.defineCommand(name, batchScript());
    this.command = (redis as unknown as Record<string, AcknowledgeBatch>)[name]!.bind(redis);
    this.batches = new GroupCommit((items) => this.sendBatch(items), {
      ...BATCH,
      sizeOf: () => 1,
      onBatch,
    });
  }

  /** See {@link RunStore.acknowledge}; `event` is published when the answer is `acked`. */
  acknowledge(
    runId: number,
    execution: number,
    windowMs: number,
    event: RunStateMessage | null = null,
  ): Promise<AckResult> {
    return this.batches.run({ runId, execution, windowMs: Math.floor(windowMs), event });
  }

  private sendBatch(items: AckItem[]): Promise<AckResult[]> {
    const args: Array<string | number> = [this.keys.runEvents()];
    for (const item of items) {
      args.push(
        String(item.execution),
        String(item.windowMs),
        item.event ? JSON.stringify(item.event) : '',
        this.keys.runAcknowledged(item.runId),
      );
    }
    return this.command(items.length, ...items.map((item) => this.keys.run(item.runId)), ...args);
  }
}
