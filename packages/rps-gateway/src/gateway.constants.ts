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

/**
 * Flags every launch of the gateway gives node: `npm start -w @rps/rps-gateway`,
 * scripts/start.sh, docker/docker-compose.yml and the benchmark
 * (`node-flags.test.ts` holds them to this list; docs/gateway.md, *Heap*).
 *
 * With V8's default heap sizing the gateway's old space stays at 20-30 MB and
 * every run's short-lived objects (a body in flight, its batch, its reply)
 * bring on a full mark-compact every 80-130 ms at full load: a CPU profile put
 * 18 % of the main thread in the garbage collector, plus concurrent marking on
 * the other core. A larger initial old space lets it grow before the first
 * full collections: in the benchmark, about a third less CPU per run.
 * The gateway still starts without them, and warns.
 */
export const GATEWAY_NODE_FLAGS = ['--initial-old-space-size=128'] as const;

/**
 * The entries of GATEWAY_NODE_FLAGS whose option node was not given at all
 * (an operator's own value of one, `--initial-old-space-size=256` say, counts as given).
 */
export function missingNodeFlags(execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.map((arg) => arg.split('=')[0]!.replaceAll('_', '-')));
  return GATEWAY_NODE_FLAGS.filter((flag) => !given.has(flag.split('=')[0]!));
}
