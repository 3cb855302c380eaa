/**
 * Defaults of the gateway's tunables for code that builds the app without a
 * config file (tests, benchmarks). main.ts passes the `gateway.*` config keys,
 * whose schema defaults are the same values; `ackPoolIdle` is not a config key.
 */
export const GATEWAY_DEFAULTS = {
  /** How long a stop of a running run waits for the owning agent's acknowledgement. */
  stopAckTimeoutMs: 5000,
  /**
   * How long a TLS connection's "not revoked" verdict is trusted before it is checked again:
   * a revocation counts within a second, also on keep-alive connections opened before it.
   */
  revocationRecheckMs: 500,
  /** Idle blocking Redis connections kept for stop acknowledgements. */
  ackPoolIdle: 4,
  /** Delivery attempts of a push the gateway originates (a stopped queued run). */
  pushAttempts: 10,
  /** First retry delay of those pushes; BullMQ doubles it each attempt. */
  pushBackoffMs: 1000,
  /** Time between two reads of the runtime allow-list (`{rps}:gateway:clients`): a change counts within a second. */
  clientsRefreshMs: 500,
  /**
   * How long after a run POST arrived the gateway may still accept it,
   * retrying through a Redis reconnect: IVIS-core gives up after 2 s
   * (ivis-protocol.md 1.1), this keeps half a second of margin.
   */
  submitBudgetMs: 1500,
  /**
   * Run bodies declaring more bytes than this are staged in Redis while
   * they upload instead of held whole in memory and sent as one argument:
   * a small body's single round trip stays, a large one never sits in the
   * gateway's memory nor in front of other runs' commands.
   */
  stageBodiesAboveBytes: 256 * 1024,
} as const;
