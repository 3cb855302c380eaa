import { waitFor } from '@rps/common/testing';
import type { PoolProcess } from '../chaos/pool';

export { gatewayClient, type GatewayClient } from '../chaos/gateway-client';

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
