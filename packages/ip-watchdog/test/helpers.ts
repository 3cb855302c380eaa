import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RpsConfig } from '@rps/common';

export type WatchdogConfig = RpsConfig<'watchdog'>['watchdog'];

/** Short intervals: the machine is shared, so tests stay quick without long sleeps. */
export function watchdogConfig(over: Partial<WatchdogConfig> = {}): WatchdogConfig {
  return {
    admin: { host: '127.0.0.1', port: 0 },
    intervalMs: 100,
    override: null,
    notify: [],
    source: { kind: 'command', command: 'echo 198.18.0.1' },
    notifyTimeoutMs: 1000,
    ...over,
  };
}

/** One request a notify target received. */
export interface Hit {
  body: Record<string, unknown>;
  at: number;
  status: number;
}

/** A notify target: records every POST; answers 500 to the first `failFirst` requests, 200 after. */
export interface NotifyTarget {
  url: string;
  hits: Hit[];
  close(): Promise<void>;
}

export async function startNotifyTarget(failFirst = 0): Promise<NotifyTarget> {
  const hits: Hit[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = hits.length < failFirst ? 500 : 200;
      hits.push({ body: JSON.parse(Buffer.concat(chunks).toString('utf8')), at: Date.now(), status });
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/rps/ip`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
