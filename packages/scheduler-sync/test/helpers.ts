import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { peerRecordToHash, type RedisKeys, type RpsConfig } from '@rps/common';
import type { Redis } from 'ioredis';

export type SchedulerConfig = RpsConfig<'scheduler'>['scheduler'];

/** Short intervals: the machine is shared, so tests stay quick without long sleeps. */
export function schedulerConfig(over: Partial<SchedulerConfig> = {}): SchedulerConfig {
  return {
    admin: { host: '127.0.0.1', port: 0 },
    heartbeatTimeoutMs: 1000,
    tickMs: 200,
    syncIntervalMs: 60_000,
    retentionMs: 7 * 86_400_000,
    trustedUrlBase: null,
    ...over,
  };
}

/** One request the fake IVIS-core received. */
export interface Received {
  path: string;
  body: Record<string, unknown>;
  at: number;
}

/** A stand-in for IVIS-core's trusted push routes: records every POST, answers 200 `{}` (or fails on demand). */
export interface FakeIvis {
  url: string;
  received: Received[];
  /** Answer 500 to the next `n` requests. */
  failNext(n: number): void;
  close(): Promise<void>;
}

export async function startFakeIvis(): Promise<FakeIvis> {
  const received: Received[] = [];
  let failures = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      if (failures > 0) {
        failures--;
        res.writeHead(500, { 'content-type': 'application/json' }).end('{}');
        return;
      }
      received.push({ path: req.url ?? '', body, at: Date.now() });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    failNext: (n) => void (failures = n),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A peer as the agent would register it, heartbeating on a timer until stopped. */
export class SimulatedPeer {
  private timer: NodeJS.Timeout | undefined;
  lastHeartbeat = 0;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    readonly id: string,
    private readonly adminUrl = '',
  ) {}

  async register(now = Date.now()): Promise<void> {
    const record = {
      id: this.id,
      address: '127.0.0.1',
      capacity: 2,
      executor: 'builtin',
      version: '0.1.0',
      state: 'active' as const,
      adminUrl: this.adminUrl,
      registeredAt: now,
      heartbeatAt: now,
    };
    await this.redis.hset(this.keys.peer(this.id), peerRecordToHash(record));
    await this.heartbeat(now);
  }

  async heartbeat(now = Date.now()): Promise<void> {
    this.lastHeartbeat = now;
    await this.redis
      .multi()
      .hset(this.keys.peer(this.id), 'heartbeatAt', String(now))
      .zadd(this.keys.peers(), now, this.id)
      .exec();
  }

  startHeartbeats(everyMs = 100): void {
    this.timer = setInterval(() => void this.heartbeat(), everyMs);
  }

  stopHeartbeats(): void {
    clearInterval(this.timer);
  }
}

/** A minimal run request body (the scheduler never parses it; only its presence matters). */
export const RUN_BODY = Buffer.from('{"taskId":7,"jobId":5,"type":"python"}');
