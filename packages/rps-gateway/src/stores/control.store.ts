import type { Redis } from 'ioredis';
import {
  CONTROL_STREAM_MAXLEN,
  controlAckSchema,
  type ControlAck,
  type ControlCommand,
  type RedisKeys,
} from '@rps/common';
import type { BlockingPool } from './blocking-pool';

/** The stream field that carries a command's JSON (agents read the same name). */
export const CONTROL_COMMAND_FIELD = 'command';

/** The outcome of waiting for an acknowledgement. */
export type AckResult =
  { kind: 'ack'; ack: ControlAck } | { kind: 'timeout' } | { kind: 'malformed'; raw: string };

/**
 * The peers' durable control streams and the acknowledgement lists agents
 * answer on.
 */
export class ControlStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly blocking: BlockingPool,
  ) {}

  /** Appends a command to one peer's stream. */
  async send(peerId: string, command: ControlCommand): Promise<void> {
    await this.redis.xadd(
      this.keys.peerControl(peerId),
      'MAXLEN',
      '~',
      CONTROL_STREAM_MAXLEN,
      '*',
      CONTROL_COMMAND_FIELD,
      JSON.stringify(command),
    );
  }

  /** Appends one command per peer, in one round trip. */
  async sendToEach(commands: ReadonlyArray<{ peerId: string; command: ControlCommand }>): Promise<void> {
    if (commands.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const { peerId, command } of commands) {
      pipeline.xadd(
        this.keys.peerControl(peerId),
        'MAXLEN',
        '~',
        CONTROL_STREAM_MAXLEN,
        '*',
        CONTROL_COMMAND_FIELD,
        JSON.stringify(command),
      );
    }
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed?.[0]) throw failed[0];
  }

  /**
   * Waits up to `timeoutMs` for the acknowledgement of a command. The ack is a
   * list with a TTL, so it does not matter whether the agent answers before
   * or after the wait starts.
   */
  async waitForAck(commandId: string, timeoutMs: number): Promise<AckResult> {
    const key = this.keys.controlAck(commandId);
    const popped = await this.blocking.use((redis) =>
      withDeadline(redis.blpop(key, timeoutMs / 1000), timeoutMs + 1000),
    );
    if (popped === null) return { kind: 'timeout' };
    const raw = popped[1];
    try {
      const parsed = controlAckSchema.safeParse(JSON.parse(raw));
      return parsed.success ? { kind: 'ack', ack: parsed.data } : { kind: 'malformed', raw };
    } catch {
      return { kind: 'malformed', raw };
    }
  }
}

/**
 * BLPOP's own timeout does not run while Redis is unreachable (the command
 * sits in the offline queue), so the wait gets a deadline of its own; the
 * pool then drops the connection, whose state is unknown.
 */
async function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`redis did not answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
