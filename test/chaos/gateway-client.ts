import https from 'node:https';
import type { TestPki } from '@rps/common/testing';

/** One answer of the gateway. */
export interface GatewayAnswer {
  status: number;
  text: string;
  json: () => Record<string, unknown>;
}

/**
 * IVIS-core's side of the public port: mTLS with IVIS-core's certificate, its
 * 2 s timeout (ivis-protocol.md 1.1). `port` may be a function, for a client
 * made before the gateway's port is chosen.
 */
export function gatewayClient(
  pki: TestPki,
  host: string,
  port: number | (() => number),
  agentOptions: https.AgentOptions = {},
) {
  const agent = new https.Agent({
    keepAlive: true,
    ...agentOptions,
    ca: pki.ca.cert,
    cert: pki.client.cert,
    key: pki.client.key,
  });
  const call = (method: string, urlPath: string, body?: unknown) =>
    new Promise<GatewayAnswer>((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = https.request(
        {
          host,
          port: typeof port === 'number' ? port : port(),
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

export type GatewayClient = ReturnType<typeof gatewayClient>;
