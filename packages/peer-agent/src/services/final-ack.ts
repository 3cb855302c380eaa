import type { RunLedger } from '../stores/run-ledger.store';

/** How often the record is looked at while waiting (a bound on the added latency, not a deadline). */
const ACK_CHECK_MS = 100;

/**
 * Whether IVIS-core acknowledged a final status that a job runner (rjr)
 * pushed by itself: IVIS-core deletes the run while it handles a final push
 * it accepted (ivis-protocol.md 2.3), so the record disappears, or a new
 * execution replaces it. False when the record is still this execution's
 * after `withinMs`: the runner's push (never retried) may have been lost.
 */
export async function finalAcknowledged(
  ledger: Pick<RunLedger, 'get'>,
  runId: number,
  execution: number,
  withinMs: number,
): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const record = await ledger.get(runId);
    if (!record || record.execution !== execution) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, ACK_CHECK_MS));
  }
}
