import type { Redis } from 'ioredis';
import { CONTROL_ACK_TTL_S, CONTROL_GROUP, type ControlAck, type RedisKeys } from '@rps/common';

/** One entry read from the control stream; `command` is the raw field, null when the entry was trimmed. */
export interface ControlEntry {
  entryId: string;
  command: string | null;
}

type StreamReply = Array<[string, Array<[string, string[] | null]>]> | null;

/**
 * The peer's durable control stream (`keys.peerControl(peerId)`), read through
 * the consumer group {@link CONTROL_GROUP} with the peer id as consumer name,
 * so a restarted agent finds the commands it had read but not finished.
 */
export class ControlStore {
  private readonly stream: string;

  constructor(
    /** A connection of its own: reads block. */
    private readonly blocking: Redis,
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly peerId: string,
  ) {
    this.stream = keys.peerControl(peerId);
  }

  /** Creates the group from the stream's start, so commands sent while the peer was away are read. */
  async ensureGroup(): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.stream, CONTROL_GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!(err instanceof Error) || !err.message.includes('BUSYGROUP')) throw err;
    }
  }

  /** Entries this consumer read earlier but never acknowledged (a previous incarnation's). */
  pending(count = 100): Promise<ControlEntry[]> {
    return this.readNow('0', count);
  }

  /** New entries that are already there (no wait): what arrived while the agent was away. */
  backlog(count = 100): Promise<ControlEntry[]> {
    return this.readNow('>', count);
  }

  /** One group read without blocking: `0` is this consumer's unacknowledged entries, `>` new ones. */
  private async readNow(from: '0' | '>', count: number): Promise<ControlEntry[]> {
    const reply = (await this.redis.xreadgroup(
      'GROUP',
      CONTROL_GROUP,
      this.peerId,
      'COUNT',
      count,
      'STREAMS',
      this.stream,
      from,
    )) as StreamReply;
    return toEntries(reply);
  }

  /** New entries, waiting up to `blockMs`. */
  async next(blockMs: number, count = 20): Promise<ControlEntry[]> {
    const reply = (await this.blocking.xreadgroup(
      'GROUP',
      CONTROL_GROUP,
      this.peerId,
      'COUNT',
      count,
      'BLOCK',
      blockMs,
      'STREAMS',
      this.stream,
      '>',
    )) as StreamReply;
    return toEntries(reply);
  }

  async ack(entryId: string): Promise<void> {
    await this.redis.xack(this.stream, CONTROL_GROUP, entryId);
  }

  /** The answer the sender BLPOPs for. */
  async reply(ack: ControlAck): Promise<void> {
    const key = this.keys.controlAck(ack.id);
    await this.redis.multi().lpush(key, JSON.stringify(ack)).expire(key, CONTROL_ACK_TTL_S).exec();
  }
}

function toEntries(reply: StreamReply): ControlEntry[] {
  const entries = reply?.[0]?.[1] ?? [];
  return entries.map(([entryId, fields]) => {
    let command: string | null = null;
    for (let i = 0; fields && i + 1 < fields.length; i += 2) {
      if (fields[i] === 'command') command = fields[i + 1] ?? null;
    }
    return { entryId, command };
  });
}
