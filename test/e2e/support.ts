import https from 'node:https';
import { waitFor, type TestPki } from '@rps/common/testing';
import type { PoolProcess } from '../chaos/pool';

/** One answer of the gateway. */
export interface GatewayAnswer {
  status: number;
  text: string;
  json: () => Record<string, unknown>;
}

/** IVIS-core's side of the public port: mTLS with IVIS-core's certificate, its 2 s timeout (ivis-protocol.md 1.1). */
export function gatewayClient(pki: TestPki, host: string, port: number) {
  const agent = new https.Agent({
    ca: pki.ca.cert,
    cert: pki.client.cert,
    key: pki.client.key,
    keepAlive: true,
  });
  const call = (method: string, urlPath: string, body?: unknown) =>
    new Promise<GatewayAnswer>((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = https.request(
        {
          host,
          port,
          path: urlPath,
          method,
          agent,
          timeout: 2000,
          headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({
              status: res.statusCode ?? 0,
              text,
              json: () => JSON.parse(text) as Record<string, unknown>,
            });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout after 2000 ms (IVIS-core gives up)')));
      req.on('error', reject);
      req.end(data);
    });
  return { call, destroy: () => agent.destroy() };
}

/** The last lines each process printed, for the message of a failed wait. */
export function tailOf(processes: PoolProcess[], lines = 40): string {
  return processes.map((p) => `--- ${p.name}\n${p.log.slice(-lines).join('\n')}`).join('\n');
}

/** `waitFor` whose failure carries the processes' log tails. */
export function waitWithLogs(processes: () => PoolProcess[], defaultTimeoutMs: number) {
  return <T>(what: string, check: () => T | Promise<T>, timeoutMs = defaultTimeoutMs) =>
    waitFor(what, check, { timeoutMs, intervalMs: 50 }).catch((err: Error) => {
      throw new Error(`${err.message}\n${tailOf(processes())}`);
    });
}
