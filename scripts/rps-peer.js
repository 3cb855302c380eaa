#!/usr/bin/env node
// The operator's peer commands, until remote-manager exists (it will call the
// same common PeerAdmin functions). Reads `redis` from the config file
// (RPS_CONFIG, REDIS_URL as for every service). Needs `npm run build` first.
//
//   node scripts/rps-peer.js list
//   node scripts/rps-peer.js remove <peerId>    # out of the pool for good; pruned after scheduler.retentionMs
//   node scripts/rps-peer.js forget <peerId>    # prune a removed peer now (so its agent may register again)
//   node scripts/rps-peer.js drain <peerId>     # durable command: finish runs, take no new ones (kept across restarts)
//   node scripts/rps-peer.js undrain <peerId>   # durable command: take runs again
//
// Exit codes: 0 done, 1 refused (unknown or not removed peer), 2 usage or config error.
const { randomUUID } = require('node:crypto');
const {
  closeRedis,
  controlAckSchema,
  createLogger,
  createRedis,
  createRedisKeys,
  loadConfigOrExit,
  PeerAdmin,
  waitForRedis,
} = require('../packages/common/dist');

const USAGE =
  'usage: rps-peer.js list | remove <peerId> | forget <peerId> | drain <peerId> | undrain <peerId>';
/** How long drain/undrain wait for the agent's answer before saying the command is queued. */
const ACK_WAIT_S = 5;

const out = (line) => process.stdout.write(`${line}\n`);

async function main() {
  const [command, peerId] = process.argv.slice(2);
  const needsPeer = ['remove', 'forget', 'drain', 'undrain'].includes(command);
  if (!(command === 'list' || (needsPeer && peerId))) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const config = loadConfigOrExit([]);
  const logger = createLogger({ name: 'rps-peer', level: 'warn' });
  const redis = createRedis({ url: config.redis.url, role: 'worker', name: 'rps-peer', logger });
  try {
    await waitForRedis(redis, 10_000);
    const keys = createRedisKeys(config.redis.prefix);
    const admin = new PeerAdmin(redis, keys);
    switch (command) {
      case 'list':
        for (const peer of await admin.list()) {
          const r = peer.record;
          const drain = r?.drain ? ' drain' : '';
          out(
            `${peer.id}\t${peer.state || '(no record)'}${drain}\t${r?.address ?? ''}\t${new Date(peer.heartbeatAt).toISOString()}`,
          );
        }
        return 0;
      case 'remove': {
        const outcome = await admin.remove(peerId);
        out(`${peerId}: ${outcome}`);
        return outcome === 'unknown' ? 1 : 0;
      }
      case 'forget': {
        const pruned = await admin.prune(peerId, Number.MAX_SAFE_INTEGER);
        out(`${peerId}: ${pruned ? 'pruned' : 'not removed, nothing pruned'}`);
        return pruned ? 0 : 1;
      }
      default: {
        if (!(await admin.list()).some((p) => p.id === peerId && p.state && p.state !== 'removed')) {
          out(`${peerId}: no such peer in the pool`);
          return 1;
        }
        const id = randomUUID();
        await admin.send(peerId, { kind: command, id });
        const popped = await redis.blpop(keys.controlAck(id), ACK_WAIT_S);
        const ack = popped ? controlAckSchema.safeParse(JSON.parse(popped[1])) : null;
        if (ack?.success) out(`${peerId}: ${ack.data.ok ? 'ok' : 'refused'}: ${ack.data.message}`);
        else out(`${peerId}: ${command} queued; the agent carries it out when it reads its stream`);
        return ack?.success && !ack.data.ok ? 1 : 0;
      }
    }
  } finally {
    await closeRedis(redis);
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`rps-peer: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
