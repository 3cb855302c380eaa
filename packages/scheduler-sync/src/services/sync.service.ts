import type { Logger } from 'pino';
import { request, type Dispatcher } from 'undici';
import type { PeerEntry, PeerStore, PeerSyncResult } from '../stores/peer.store';
import type { SchedulerMetrics } from './scheduler.metrics';

/** The counts one sync round logs. */
export interface SyncSummary {
  probed: number;
  ok: number;
  failed: number;
  halfDead: number;
  /** Registered peers without an admin URL (nothing to probe). */
  unprobed: number;
}

const PROBE_CONCURRENCY = 8;

/**
 * The sync round (the consumer-scheduler's availability check, adapted):
 * every registered peer's (neither stopped nor removed) agent admin endpoint is asked for
 * `/healthz`; the answer, the version and the round trip time are recorded
 * per peer. A peer whose heartbeat is fresh but whose endpoint does not
 * answer is flagged half-dead: its heartbeat loop lives on while the rest of
 * the agent may not, which liveness alone cannot see.
 */
export class SyncService {
  private readonly log: Logger;

  constructor(
    private readonly deps: {
      peers: PeerStore;
      metrics: SchedulerMetrics;
      dispatcher: Dispatcher;
      probeTimeoutMs: number;
      heartbeatTimeoutMs: number;
      logger: Logger;
    },
  ) {
    this.log = deps.logger.child({ component: 'sync' });
  }

  async run(now = Date.now()): Promise<SyncSummary> {
    const summary: SyncSummary = { probed: 0, ok: 0, failed: 0, halfDead: 0, unprobed: 0 };
    // A stopped or removed peer's agent is not running: nothing to probe.
    const peers = (await this.deps.peers.list()).filter(
      (p) => p.exists && p.state !== 'removed' && p.state !== 'stopped',
    );
    const targets = peers.filter((p) => p.record?.adminUrl);
    summary.unprobed = peers.length - targets.length;
    let next = 0;
    const worker = async () => {
      for (let peer = targets[next++]; peer; peer = targets[next++]) {
        const result = await this.probe(peer, now);
        await this.deps.peers.writeSync(peer.id, result);
        summary.probed++;
        if (result.ok) summary.ok++;
        else summary.failed++;
        if (result.halfDead) {
          summary.halfDead++;
          this.log.warn(
            { peerId: peer.id, error: result.error },
            'peer half-dead: heartbeats but admin endpoint fails',
          );
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PROBE_CONCURRENCY, targets.length) }, worker));
    this.deps.metrics.peersHalfDead.set(summary.halfDead);
    return summary;
  }

  private async probe(peer: PeerEntry, now: number): Promise<PeerSyncResult> {
    const adminUrl = peer.record?.adminUrl ?? '';
    const started = performance.now();
    const fresh = peer.heartbeatAt >= now - this.deps.heartbeatTimeoutMs;
    const base = { version: peer.record?.version ?? '', at: now };
    try {
      const res = await request(new URL('/healthz', adminUrl), {
        method: 'GET',
        dispatcher: this.deps.dispatcher,
        signal: AbortSignal.timeout(this.deps.probeTimeoutMs),
      });
      const text = await res.body.text();
      const rttMs = Math.round(performance.now() - started);
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      const version = versionOf(text) ?? base.version;
      const error = ok ? '' : `HTTP ${res.statusCode}`;
      return { ...base, ok, status: res.statusCode, version, rttMs, error, halfDead: !ok && fresh };
    } catch (err) {
      const rttMs = Math.round(performance.now() - started);
      const error = err instanceof Error ? err.message : String(err);
      return { ...base, ok: false, status: 0, rttMs, error, halfDead: fresh };
    }
  }
}

/** The agent's version if its `/healthz` answer names one (`{"version": "..."}`). */
function versionOf(body: string): string | null {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null && 'version' in parsed) {
      return typeof parsed.version === 'string' ? parsed.version : null;
    }
  } catch {
    // Not JSON: the status code alone answers the probe.
  }
  return null;
}
