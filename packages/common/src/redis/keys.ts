/**
 * The one registry of Redis names: every key, queue, stream and channel the
 * services use is built here, under the configured prefix (default `{rps}`, a
 * Redis Cluster hash tag so multi-key scripts stay on one slot). No other code
 * spells a key. `docs/redis.md` documents the same layout for `redis-cli` users;
 * a test checks that the two agree.
 *
 * Each builder's comment says: Redis type, TTL, writer(s), reader(s).
 */
export interface RedisKeys {
  /** The prefix itself, as configured. */
  readonly prefix: string;
  /** The `prefix` option for BullMQ queues and workers (keys `<prefix>:bull:<queue>:*`). */
  readonly bullPrefix: string;

  /** hash; no TTL (retention by scheduler-sync); writers: rps-gateway, peer-agent, scheduler-sync; readers: all. The run record (state, peer, execution, timestamps). */
  run(runId: number): string;
  /** string; no TTL, deleted with the run; writer: rps-gateway; reader: peer-agent. The run request body exactly as IVIS-core sent it. */
  runRequest(runId: number): string;
  /** string; no TTL, deleted with the run; writer: peer-agent (APPEND); readers: rps-gateway, scheduler-sync. The run's stdout log. */
  runOutput(runId: number): string;
  /** zset runId -> last change (ms); writers: rps-gateway, peer-agent, scheduler-sync; readers: scheduler-sync (retention, reconciliation). */
  runIndex(): string;
  /** string; TTL 60 s (set by its first write), deleted when the upload fails or by a submit that recorded nothing, else renamed to {@link runRequest} by the submit; writer and reader: rps-gateway. A run body on its way to its submit: a large one being uploaded, created at its full length and written as it arrives (SETRANGE) on the gateway's upload connection, or a small one SET just ahead of the submit script in the same MULTI. */
  runUpload(uploadId: string): string;
  /** string (the body's length); TTL 60 s; writer: rps-gateway, after the last byte of {@link runUpload}; reader: rps-gateway's submit script, which deletes it. Says the staged body is whole. */
  runUploadSealed(uploadId: string): string;

  /** hash jobId -> JSON {jobId, data}; no TTL; writers: peer-agent, scheduler-sync (in the final state change, run-apply script); readers: the push-worker hosts (peer-agent, scheduler-sync), which move entries to the `pushes` queue and delete them. Final pushes not yet queued. */
  pushOutbox(): string;
  /** zset jobId -> due time (ms); companion of {@link pushOutbox}; an entry is taken by any drainer once due (its writer takes it at once). */
  pushOutboxDue(): string;

  /** hash; no TTL (a removed peer's is pruned by scheduler-sync's retention); writers: peer-agent (register, heartbeat, drain, stop), scheduler-sync (state lost), operators/remote-manager via PeerAdmin (removal); readers: all. One peer's registration. */
  peer(peerId: string): string;
  /** zset peerId -> last heartbeat (ms); every known peer, stopped and removed ones too, until pruned; writers: peer-agent, PeerAdmin (removal, prune); readers: scheduler-sync (liveness), rps-gateway (task delete fan-out), peer-forwarder. */
  peers(): string;
  /** set of runIds; writers: peer-agent, scheduler-sync; readers: scheduler-sync, rps-gateway. Runs a peer holds (dispatched or running). */
  peerRuns(peerId: string): string;
  /** stream; trimmed by MAXLEN, deleted when a removed peer is pruned; writers: rps-gateway (stop, task delete), operators/remote-manager via PeerAdmin (drain, undrain); reader: the peer's agent (consumer group). Durable commands for one peer. */
  peerControl(peerId: string): string;
  /** hash (ok, status, version, rttMs, at, error, halfDead); no TTL; writer: scheduler-sync (sync round); readers: remote-manager, operators. The last probe of a peer's agent. */
  peerSync(peerId: string): string;
  /** list, capped at 100, newest first, JSON {address, previous, at}; no TTL; writer: ip-watchdog; readers: remote-manager, operators. A peer's address changes. */
  peerAddressHistory(peerId: string): string;
  /** list; TTL 60 s; writer: peer-agent; reader: rps-gateway (BLPOP). The acknowledgement of one control command. */
  controlAck(commandId: string): string;

  /** channel; writers: peer-agent, scheduler-sync, remote-manager; subscribers: peer-forwarder (allow-list), ip-watchdog. A peer joined, changed address or left. */
  peerEvents(): string;
  /** channel; writers: rps-gateway, peer-agent, scheduler-sync; subscribers: dashboards, tests. A run changed state. */
  runEvents(): string;
  /** channel; writer: rps-gateway (its acknowledgement script); subscriber: peer-agent, only while a claim of the run waits for it. A run's pending submit was acknowledged (the message is the execution). */
  runAcknowledged(runId: number): string;

  /** string; no TTL; writer: first service that starts (SET NX); readers: ip-watchdog, scheduler-sync. The RPS instance identity (uuid). */
  instanceId(): string;
  /** string; no TTL; writer: ip-watchdog; readers: remote-manager, operators. The RPS host's current public address. */
  publicIp(): string;
  /** list, capped; no TTL; writer: ip-watchdog; readers: remote-manager, operators. Address changes, newest first, JSON. */
  publicIpHistory(): string;
  /** channel; writer: ip-watchdog; subscribers: any service. The public address changed. */
  publicIpEvents(): string;
  /** hash notify target (origin + path) -> last address delivered to it; no TTL; writer and reader: ip-watchdog. Targets not told the current address are told again. */
  publicIpNotified(): string;
  /** set of decimal serials; no TTL; writer: remote-manager; reader: rps-gateway. Revoked client certificates. */
  revokedSerials(): string;
  /** hash client name -> JSON `{fingerprint256}` or `{serial, issuer}` (clientMatchSchema); no TTL; writers: remote-manager, operators (redis-cli); reader: rps-gateway (polled). Allowed clients besides `gateway.clients`. */
  gatewayClients(): string;

  /** hash (name, description, address, dnsname, type, parameters JSON, capacity, state, createdAt, removedAt, certSerial); no TTL (a removed machine's is deleted by remote-manager once its peer is pruned); writer: remote-manager; readers: remote-manager, operators. One machine of the registry; its id is its agent's `agent.id` (the peer). */
  machine(machineId: string): string;
  /** zset machineId -> creation time (ms); writer: remote-manager (machine-create, machine-delete scripts); readers: remote-manager, operators. Every machine of the registry. */
  machines(): string;
  /** hash machine name -> machineId; writer: remote-manager (with {@link machines}); reader: remote-manager. Keeps names unique. */
  machineNames(): string;
  /** hash machine id -> SHA-256 (hex) of its peer Redis user's password; no TTL; writer: remote-manager (bundle issue, machine removal); reader: remote-manager, which re-creates the ACL users from it after a Redis restart (ACL users live outside the keyspace and AOF unless Redis has an aclfile). */
  peerUserHashes(): string;
}

/** BullMQ queue names (under {@link RedisKeys.bullPrefix}). */
export const QUEUES = {
  /** Run requests published by rps-gateway, consumed by peer-agents within their capacity. Job id = `<runId>:<execution>`. */
  runs: 'runs',
  /** Periodic jobs of scheduler-sync (liveness, sync, reconciliation, retention) as job schedulers. */
  scheduler: 'scheduler',
  /** Pushes to IVIS-core that must not be lost: every run's final pushes (from the outbox), a queued run stopped; consumed by peer-agents and scheduler-sync. */
  pushes: 'pushes',
} as const;

/** Builds the registry for one prefix. Pure; call once at start-up and pass it down. */
export function createRedisKeys(prefix: string): RedisKeys {
  const k = (...parts: Array<string | number>) => [prefix, ...parts].join(':');
  return Object.freeze({
    prefix,
    bullPrefix: k('bull'),
    run: (runId: number) => k('run', runId),
    runRequest: (runId: number) => k('run', runId, 'request'),
    runOutput: (runId: number) => k('run', runId, 'output'),
    runIndex: () => k('runs'),
    runUpload: (uploadId: string) => k('upload', uploadId),
    runUploadSealed: (uploadId: string) => k('upload', uploadId, 'sealed'),
    pushOutbox: () => k('pushes', 'outbox'),
    pushOutboxDue: () => k('pushes', 'outbox', 'due'),
    peer: (peerId: string) => k('peer', peerId),
    peers: () => k('peers'),
    peerRuns: (peerId: string) => k('peer', peerId, 'runs'),
    peerControl: (peerId: string) => k('peer', peerId, 'control'),
    peerSync: (peerId: string) => k('peer', peerId, 'sync'),
    peerAddressHistory: (peerId: string) => k('peer', peerId, 'addresses'),
    controlAck: (commandId: string) => k('ack', commandId),
    peerEvents: () => k('events', 'peers'),
    runEvents: () => k('events', 'runs'),
    runAcknowledged: (runId: number) => k('events', 'run', runId, 'acknowledged'),
    instanceId: () => k('instance'),
    publicIp: () => k('ip', 'current'),
    publicIpHistory: () => k('ip', 'history'),
    publicIpEvents: () => k('events', 'ip'),
    publicIpNotified: () => k('ip', 'notified'),
    revokedSerials: () => k('certs', 'revoked'),
    gatewayClients: () => k('gateway', 'clients'),
    machine: (machineId: string) => k('machine', machineId),
    machines: () => k('machines'),
    machineNames: () => k('machines', 'names'),
    peerUserHashes: () => k('machines', 'redis-users'),
  });
}
