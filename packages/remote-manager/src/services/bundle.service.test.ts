import { agentConfig, buildBundle, withRedisUser, type BundleInput } from './bundle.service';

const input: BundleInput = {
  machineId: 'peer-9',
  address: '10.0.0.9',
  capacity: 3,
  agent: { executor: { kind: 'rjr', url: 'http://10.0.0.9:8080' } },
  redisUrl: 'redis://10.0.0.1:6379/0',
  prefix: '{rps}',
  ivis: {
    trustedUrlBase: 'http://10.0.0.1:10329',
    sandboxUrlBase: 'http://10.0.0.1:10330',
    es: { host: '10.0.0.1', port: 10328 },
  },
  certPem: 'CERT',
  keyPem: 'KEY',
  caPem: 'CA',
};

describe('setup bundle', () => {
  it('when built then the agent config is complete and the secrets are 0600', () => {
    const config = agentConfig(input) as { agent: Record<string, unknown>; redis: { prefix: string } };
    expect(config.agent).toMatchObject({
      id: 'peer-9',
      address: '10.0.0.9',
      capacity: 3,
      admin: { port: 9331 },
    });
    expect(config.redis.prefix).toBe('{rps}');
    const modes = Object.fromEntries(buildBundle(input).files.map((f) => [f.name, f.mode]));
    expect(modes).toEqual({ 'agent.yaml': '0600', 'svr.pem': '0644', 'svr.key': '0600', 'ca.cert': '0644' });
  });

  it('when the type gives an executor the agent would refuse then no bundle is made', () => {
    expect(() => agentConfig({ ...input, agent: { executor: { kind: 'rjr', url: 'ftp://x' } } })).toThrow(
      /agent\.executor\.url/,
    );
  });

  it("when a machine has its own Redis user then it replaces the URL's user part, escaped", () => {
    expect(withRedisUser('redis://:admin@10.0.0.1:6379/0', { username: 'peer-9', password: 'p@ss/w' })).toBe(
      'redis://peer-9:p%40ss%2Fw@10.0.0.1:6379/0',
    );
    expect(withRedisUser('redis://10.0.0.1:6379/0', null)).toBe('redis://10.0.0.1:6379/0');
  });
});
