import fs from 'node:fs';
import path from 'node:path';
import { createRedisKeys, QUEUES, type RedisKeys } from './keys';

type Builder = Exclude<keyof RedisKeys, 'prefix' | 'bullPrefix'>;

/** Every builder with placeholder arguments, as docs/redis.md writes them. */
const PLACEHOLDER_ARGS: Record<Builder, string[]> = {
  run: ['<runId>'],
  runRequest: ['<runId>'],
  runOutput: ['<runId>'],
  runIndex: [],
  runUpload: ['<uploadId>'],
  runUploadSealed: ['<uploadId>'],
  pushOutbox: [],
  pushOutboxDue: [],
  peer: ['<peerId>'],
  peers: [],
  peerRuns: ['<peerId>'],
  peerControl: ['<peerId>'],
  peerSync: ['<peerId>'],
  peerAddressHistory: ['<peerId>'],
  controlAck: ['<commandId>'],
  peerEvents: [],
  runEvents: [],
  runAcknowledged: ['<runId>'],
  instanceId: [],
  publicIp: [],
  publicIpHistory: [],
  publicIpEvents: [],
  publicIpNotified: [],
  revokedSerials: [],
  gatewayClients: [],
  machine: ['<machineId>'],
  machines: [],
  machineNames: [],
  peerUserHashes: [],
};

function allShapes(keys: RedisKeys): string[] {
  return (Object.keys(PLACEHOLDER_ARGS) as Builder[]).map((name) =>
    (keys[name] as (...args: string[]) => string)(...PLACEHOLDER_ARGS[name]),
  );
}

describe('createRedisKeys', () => {
  const keys = createRedisKeys('{rps}');

  it('when built with the default prefix then every shape is pinned', () => {
    expect(keys.run(42)).toBe('{rps}:run:42');
    expect(keys.runRequest(42)).toBe('{rps}:run:42:request');
    expect(keys.runOutput(42)).toBe('{rps}:run:42:output');
    expect(keys.runIndex()).toBe('{rps}:runs');
    expect(keys.runUpload('u1')).toBe('{rps}:upload:u1');
    expect(keys.runUploadSealed('u1')).toBe('{rps}:upload:u1:sealed');
    expect(keys.pushOutbox()).toBe('{rps}:pushes:outbox');
    expect(keys.pushOutboxDue()).toBe('{rps}:pushes:outbox:due');
    expect(keys.peer('peer-1')).toBe('{rps}:peer:peer-1');
    expect(keys.peers()).toBe('{rps}:peers');
    expect(keys.peerRuns('peer-1')).toBe('{rps}:peer:peer-1:runs');
    expect(keys.peerControl('peer-1')).toBe('{rps}:peer:peer-1:control');
    expect(keys.peerSync('peer-1')).toBe('{rps}:peer:peer-1:sync');
    expect(keys.peerAddressHistory('peer-1')).toBe('{rps}:peer:peer-1:addresses');
    expect(keys.controlAck('c1')).toBe('{rps}:ack:c1');
    expect(keys.peerEvents()).toBe('{rps}:events:peers');
    expect(keys.runEvents()).toBe('{rps}:events:runs');
    expect(keys.runAcknowledged(7)).toBe('{rps}:events:run:7:acknowledged');
    expect(keys.instanceId()).toBe('{rps}:instance');
    expect(keys.publicIp()).toBe('{rps}:ip:current');
    expect(keys.publicIpHistory()).toBe('{rps}:ip:history');
    expect(keys.publicIpEvents()).toBe('{rps}:events:ip');
    expect(keys.publicIpNotified()).toBe('{rps}:ip:notified');
    expect(keys.revokedSerials()).toBe('{rps}:certs:revoked');
    expect(keys.gatewayClients()).toBe('{rps}:gateway:clients');
    expect(keys.machine('m-1')).toBe('{rps}:machine:m-1');
    expect(keys.machines()).toBe('{rps}:machines');
    expect(keys.machineNames()).toBe('{rps}:machines:names');
    expect(keys.peerUserHashes()).toBe('{rps}:machines:redis-users');
    expect(keys.bullPrefix).toBe('{rps}:bull');
    expect(QUEUES).toEqual({ runs: 'runs', scheduler: 'scheduler', pushes: 'pushes' });
  });

  it('when every builder is listed here then the test covers the whole registry', () => {
    const builders = Object.keys(keys).filter((k) => k !== 'prefix' && k !== 'bullPrefix');
    expect(builders.sort()).toEqual(Object.keys(PLACEHOLDER_ARGS).sort());
  });

  it('when two builders are called then no two shapes collide', () => {
    const shapes = allShapes(keys);
    expect(new Set(shapes).size).toBe(shapes.length);
  });

  it('when the prefix changes then every key carries it', () => {
    const other = createRedisKeys('{t-1}');
    for (const shape of allShapes(other)) expect(shape.startsWith('{t-1}:')).toBe(true);
  });
});

describe('docs/redis.md', () => {
  const doc = fs.readFileSync(path.resolve(__dirname, '../../../../docs/redis.md'), 'utf8');
  const documented = [...doc.matchAll(/^\| `(\{rps\}[^`]*)` \|/gm)].map((m) => m[1]);

  it('when compared with the registry then both list exactly the same keys and channels', () => {
    expect([...documented].sort()).toEqual(allShapes(createRedisKeys('{rps}')).sort());
  });

  it('when compared with the queue names then every queue is documented', () => {
    const queues = [...doc.matchAll(/^\| `([a-z-]+)` \| /gm)].map((m) => m[1]);
    expect(queues.sort()).toEqual(Object.values(QUEUES).sort());
  });
});
