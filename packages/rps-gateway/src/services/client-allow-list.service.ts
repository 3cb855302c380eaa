import type { CertificateIdentity, ClientIdentity, Logger } from '@rps/common';
import type { StoredClients } from '../stores/client-allow-list.store';

/** The answer for one certificate: let in (with its name, or null when only the CA vouches for it), or not. */
export type ClientVerdict = { allowed: true; name: string | null } | { allowed: false };

/** What the allow-list is built from. */
export interface ClientAllowListOptions {
  /** `gateway.clients`. */
  configured: readonly ClientIdentity[];
  /** `gateway.allowAnyClientOfCa`: unlisted certificates of the CA get in too (with no name). */
  allowAnyClientOfCa: boolean;
  /** Reads the runtime list (rejects when Redis is unreachable). */
  load: () => Promise<StoredClients>;
  /** Time between two reads of the runtime list. */
  refreshMs: number;
  logger: Logger;
}

interface Index {
  byFingerprint: Map<string, string>;
  bySerialIssuer: Map<string, string>;
}

const serialIssuerKey = (serial: string, issuer: string) => `${serial}\n${issuer}`;

function buildIndex(lists: ReadonlyArray<readonly ClientIdentity[]>): Index {
  const index: Index = { byFingerprint: new Map(), bySerialIssuer: new Map() };
  for (const client of lists.flat()) {
    // The first entry wins a name clash: the config file comes first.
    if ('fingerprint256' in client) {
      if (!index.byFingerprint.has(client.fingerprint256))
        index.byFingerprint.set(client.fingerprint256, client.name);
    } else {
      const key = serialIssuerKey(client.serial, client.issuer);
      if (!index.bySerialIssuer.has(key)) index.bySerialIssuer.set(key, client.name);
    }
  }
  return index;
}

/**
 * Who may use the gateway: the clients of `gateway.clients` plus those of the
 * runtime list in Redis, re-read every `refreshMs` so remote-manager (or an
 * operator) can add and remove clients without a restart. Matching is two map
 * look-ups, cheap enough for every request. If Redis cannot be read the last
 * list read stays in force (the gateway can do nothing useful without Redis
 * anyway; the revocation check fails closed).
 */
export class ClientAllowList {
  private index: Index;
  private remote: readonly ClientIdentity[] = [];
  private lastSeen = '';
  private failing = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: ClientAllowListOptions) {
    this.index = buildIndex([options.configured]);
  }

  /** The verdict for a presented certificate. */
  identify(identity: CertificateIdentity): ClientVerdict {
    const name =
      this.index.byFingerprint.get(identity.fingerprint256) ??
      this.index.bySerialIssuer.get(serialIssuerKey(identity.serial, identity.issuer));
    if (name !== undefined) return { allowed: true, name };
    return this.options.allowAnyClientOfCa ? { allowed: true, name: null } : { allowed: false };
  }

  /** Reads the runtime list once (a failure is logged, not thrown), then keeps re-reading it. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.refresh();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One read of the runtime list; exposed for tests. */
  async refresh(): Promise<void> {
    const log = this.options.logger;
    let stored: StoredClients;
    try {
      stored = await this.options.load();
    } catch (err) {
      if (!this.failing) {
        log.warn(
          { err: { message: (err as Error).message } },
          'allowed clients not readable, keeping the last list',
        );
      }
      this.failing = true;
      return;
    }
    if (this.failing) log.info('allowed clients readable again');
    this.failing = false;
    const seen = JSON.stringify(stored);
    if (seen === this.lastSeen) return;
    this.lastSeen = seen;
    for (const bad of stored.invalid)
      log.warn({ client: bad.name, problem: bad.problem }, 'allowed client entry ignored');
    this.remote = stored.clients;
    this.index = buildIndex([this.options.configured, this.remote]);
    log.info(
      { configured: this.options.configured.map((c) => c.name), runtime: this.remote.map((c) => c.name) },
      'allowed clients loaded',
    );
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.refresh().finally(() => this.schedule());
    }, this.options.refreshMs);
    this.timer.unref();
  }
}
