import path from 'node:path';
import { ensureInstanceId, loadLuaScript, type RedisKeys } from '@rps/common';
import type { Redis } from 'ioredis';
import { z } from 'zod';

const IP_RECORD = loadLuaScript(path.join(__dirname, '../../lua'), 'ip-record');

interface IpScripts {
  rpsIpRecord(...args: Array<string | number>): Promise<string | null>;
}

/**
 * One entry of `keys.publicIpHistory()`, also the message on
 * `keys.publicIpEvents()`. Candidate for common's contracts, so subscribers
 * can validate it.
 */
export const publicIpChangeSchema = z.object({
  ip: z.string().min(1),
  previous: z.string().nullable(),
  at: z.number().int(),
  source: z.string(),
});
export type PublicIpChange = z.infer<typeof publicIpChangeSchema>;

/** Where the current address and its history live; the only code of the watchdog that touches them. */
export class IpStore {
  private readonly scripts: IpScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly historyCap: number,
  ) {
    if (!('rpsIpRecord' in redis)) redis.defineCommand('rpsIpRecord', IP_RECORD);
    this.scripts = redis as unknown as IpScripts;
  }

  /**
   * Sets the current address, appends the history entry and publishes the
   * change, all in one step, if the address differs from the recorded one.
   * Returns the previous address ('' when none was recorded), or null when
   * nothing changed (this replica, or another one, recorded it already).
   */
  async recordIfChanged(ip: string, source: string, now: number): Promise<string | null> {
    return this.scripts.rpsIpRecord(
      this.keys.publicIp(),
      this.keys.publicIpHistory(),
      ip,
      String(now),
      source,
      String(this.historyCap),
      this.keys.publicIpEvents(),
    );
  }

  /** When the current address was recorded (the newest history entry), or null. */
  async lastChangeAt(): Promise<number | null> {
    const raw = await this.redis.lindex(this.keys.publicIpHistory(), 0);
    if (raw === null) return null;
    try {
      return publicIpChangeSchema.parse(JSON.parse(raw)).at;
    } catch {
      return null;
    }
  }

  /** Notify target (shown form) -> the last address delivered to it. */
  async delivered(): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.redis.hgetall(this.keys.publicIpNotified())));
  }

  /** Records that `target` (shown form) was told `ip`. */
  async markDelivered(target: string, ip: string): Promise<void> {
    await this.redis.hset(this.keys.publicIpNotified(), target, ip);
  }

  async current(): Promise<string | null> {
    return this.redis.get(this.keys.publicIp());
  }

  /** The history, newest first; malformed entries are skipped. */
  async history(): Promise<PublicIpChange[]> {
    const raw = await this.redis.lrange(this.keys.publicIpHistory(), 0, -1);
    return raw.flatMap((line) => {
      const parsed = publicIpChangeSchema.safeParse(parseJson(line));
      return parsed.success ? [parsed.data] : [];
    });
  }

  /** The RPS instance identity shared with the other services (common's ensureInstanceId). */
  instanceId(): Promise<string> {
    return ensureInstanceId(this.redis, this.keys);
  }
}

/** JSON.parse that answers undefined for malformed text (an entry another version wrote). */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
