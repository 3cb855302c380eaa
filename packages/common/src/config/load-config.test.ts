import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, loadConfigOrExit } from './load-config';
import { parseByteSize } from './size';

const repoRoot = path.resolve(__dirname, '../../../..');
let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-config-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function writeConfig(text: string): string {
  const file = path.join(dir, 'rps.yaml');
  fs.writeFileSync(file, text);
  return file;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('when the file is empty then redis and log get the documented defaults', () => {
    const file = writeConfig('');
    const config = loadConfig({ sections: [], env: { RPS_CONFIG: file }, cwd: '/' });
    expect(config.redis).toEqual({ url: 'redis://127.0.0.1:6379/0', prefix: '{rps}' });
    expect(config.log.level).toBe('info');
  });

  it('when RPS_CONFIG is unset then config/default.yaml under cwd is read', () => {
    const config = loadConfig({ sections: ['gateway', 'agent'], env: {}, cwd: repoRoot });
    expect(config.gateway.listen.port).toBe(10327);
    expect(config.agent.id).toBe('peer-1');
  });

  it('when REDIS_URL and LOG_LEVEL are set then they override the file', () => {
    const file = writeConfig('redis: { url: "redis://10.0.0.1:6379/0" }\nlog: { level: info }\n');
    const config = loadConfig({
      sections: [],
      env: { RPS_CONFIG: file, REDIS_URL: 'redis://127.0.0.1:7000/1', LOG_LEVEL: 'debug' },
      cwd: '/',
    });
    expect(config.redis.url).toBe('redis://127.0.0.1:7000/1');
    expect(config.log.level).toBe('debug');
  });

  it('when RPS_MANAGER_TOKEN is set then it overrides manager.token, and a short token is refused', () => {
    const file = writeConfig('manager: { token: "from-the-file-0123456789" }\n');
    const fromFile = loadConfig({ sections: ['manager'], env: { RPS_CONFIG: file }, cwd: '/' });
    expect(fromFile.manager.token).toBe('from-the-file-0123456789');
    const fromEnv = loadConfig({
      sections: ['manager'],
      env: { RPS_CONFIG: file, RPS_MANAGER_TOKEN: 'from-the-env-0123456789' },
      cwd: '/',
    });
    expect(fromEnv.manager.token).toBe('from-the-env-0123456789');
    expect(() =>
      loadConfig({ sections: ['manager'], env: { RPS_CONFIG: file, RPS_MANAGER_TOKEN: 'short' }, cwd: '/' }),
    ).toThrow(/manager\.token: must be at least 16 characters/);
  });

  it('when paths are relative then they resolve against the file folder, not cwd', () => {
    const file = writeConfig('gateway:\n  tls: { cert: certs/a.pem, key: /abs/a.key }\n  allowAnyClientOfCa: true\n');
    const config = loadConfig({ sections: ['gateway'], env: { RPS_CONFIG: file }, cwd: '/somewhere/else' });
    expect(config.gateway.tls.cert).toBe(path.join(dir, 'certs/a.pem'));
    expect(config.gateway.tls.key).toBe('/abs/a.key');
    expect(config.gateway.tls.ca).toBe(path.join(dir, 'certs/ca.cert'));
  });

  it('when bodyLimit is written as 20mb then it is parsed to bytes', () => {
    const file = writeConfig('gateway: { bodyLimit: 20mb, allowAnyClientOfCa: true }\n');
    const config = loadConfig({ sections: ['gateway'], env: { RPS_CONFIG: file }, cwd: '/' });
    expect(config.gateway.bodyLimit).toBe(20 * 1024 * 1024);
  });

  it('when a value has the wrong type and a key is missing then every problem is listed with its path', () => {
    const file = writeConfig(
      'gateway:\n  listen: { port: "not-a-port" }\nagent:\n  capacity: 2\n  executor: { kind: builtin }\n',
    );
    const problems = problemsOf(() =>
      loadConfig({ sections: ['gateway', 'agent'], env: { RPS_CONFIG: file }, cwd: '/' }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^gateway\.listen\.port: /),
        expect.stringMatching(/^agent\.id: /),
        expect.stringMatching(/^agent\.address: /),
        expect.stringMatching(/^agent\.ivis: /),
      ]),
    );
  });

  it('when a key is misspelled then it is reported instead of silently defaulted', () => {
    const file = writeConfig('scheduler: { heartbeatTimoutMs: 5000 }\n');
    const problems = problemsOf(() => loadConfig({ sections: ['scheduler'], env: { RPS_CONFIG: file }, cwd: '/' }));
    expect(problems.join('\n')).toMatch(/heartbeatTimoutMs/);
  });

  it('when a section name is unknown then it is reported', () => {
    const file = writeConfig('gatway: {}\n');
    expect(problemsOf(() => loadConfig({ sections: [], env: { RPS_CONFIG: file }, cwd: '/' }))).toEqual([
      expect.stringMatching(/^gatway: unknown section/),
    ]);
  });

  it('when the executor kind is rjr then it needs a url', () => {
    const file = writeConfig(
      'agent:\n  id: p\n  address: 10.0.0.2\n  executor: { kind: rjr }\n  ivis: { trustedUrlBase: "http://a", sandboxUrlBase: "http://b", es: { host: a, port: 1 } }\n',
    );
    expect(problemsOf(() => loadConfig({ sections: ['agent'], env: { RPS_CONFIG: file }, cwd: '/' }))).toEqual([
      expect.stringMatching(/^agent\.executor\.url: /),
    ]);
  });

  it('when the file does not exist or is not YAML then that is the problem', () => {
    expect(problemsOf(() => loadConfig({ sections: [], env: { RPS_CONFIG: path.join(dir, 'nope.yaml') }, cwd: '/' })))
      .toEqual(['(file): file not found']);
    const file = writeConfig('redis: [unclosed\n');
    expect(problemsOf(() => loadConfig({ sections: [], env: { RPS_CONFIG: file }, cwd: '/' }))[0]).toMatch(/^\(line/);
  });

  it('when loaded then the config is deeply frozen', () => {
    const file = writeConfig('gateway: { allowAnyClientOfCa: true }\n');
    const config = loadConfig({ sections: ['gateway'], env: { RPS_CONFIG: file }, cwd: '/' });
    expect(Object.isFrozen(config.gateway.listen)).toBe(true);
  });
});

describe('gateway.clients', () => {
  const FP = '0D:28:B3:A7:1A:E8:54:DC:3D:88:D9:AA:CC:06:B9:00:E7:9E:CD:D4:5E:88:B7:BE:42:6B:35:CC:40:D3:C0:D8';
  const load = (text: string) => loadConfig({ sections: ['gateway'], env: { RPS_CONFIG: writeConfig(text) }, cwd: '/' });

  it('when no client is listed and allowAnyClientOfCa is not set then that is the one problem', () => {
    expect(problemsOf(() => load('gateway: { bodyLimit: 1mb }\n'))).toEqual([
      expect.stringMatching(/^gateway\.clients: must name IVIS-core's client certificate .*allowAnyClientOfCa: true/),
    ]);
    expect(problemsOf(() => load('gateway: { clients: [], allowAnyClientOfCa: false }\n'))).toHaveLength(1);
  });

  it('when allowAnyClientOfCa is true then an empty list is accepted', () => {
    expect(load('gateway: { allowAnyClientOfCa: true }\n').gateway).toMatchObject({ clients: [], allowAnyClientOfCa: true });
  });

  it('when clients are listed by fingerprint and by serial and issuer then both are normalised', () => {
    const config = load(
      [
        'gateway:',
        '  clients:',
        `    - { name: ivis-core, fingerprint256: "${FP.toLowerCase()}" }`,
        '    - { name: ivis-core-2, serial: "0x1000", issuer: "O = IVIS-core, OU = IVIS-core CA, CN = IVIS-core CA" }',
        '',
      ].join('\n'),
    );
    expect(config.gateway.allowAnyClientOfCa).toBe(false);
    expect(config.gateway.clients).toEqual([
      { name: 'ivis-core', fingerprint256: FP },
      { name: 'ivis-core-2', serial: '4096', issuer: 'CN=IVIS-core CA\nO=IVIS-core\nOU=IVIS-core CA' },
    ]);
  });

  it('when an entry is malformed then its path and problem are listed', () => {
    expect(problemsOf(() => load('gateway:\n  clients: [{ name: x, fingerprint256: "AB:CD" }]\n'))).toEqual([
      expect.stringMatching(/^gateway\.clients\.0\.fingerprint256: must be a SHA-256 fingerprint/),
    ]);
  });
});

describe('loadConfigOrExit', () => {
  it('when the config is bad then it prints one line per problem and exits 2', () => {
    const file = writeConfig('gateway: { listen: { port: -1 }, bodyLimit: lots }\n');
    const written: string[] = [];
    const exit = jest.fn((code?: number) => {
      throw new Error(`exit ${code}`);
    }) as unknown as NodeJS.Process['exit'];
    const proc = {
      env: { RPS_CONFIG: file },
      cwd: () => '/',
      exit,
      stderr: { write: (s: string) => written.push(s) } as unknown as NodeJS.Process['stderr'],
    };
    expect(() => loadConfigOrExit(['gateway'], proc)).toThrow('exit 2');
    const lines = written.join('').trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain(`${file}: gateway.listen.port: `);
    expect(lines[1]).toContain(`${file}: gateway.bodyLimit: must be a byte size`);
  });
});

describe('parseByteSize', () => {
  it.each([
    ['64mb', 64 * 1024 * 1024],
    ['512KB', 512 * 1024],
    ['1048576', 1048576],
    [100, 100],
    ['1.5kb', 1536],
  ])('when given %p then it is %p bytes', (input, bytes) => {
    expect(parseByteSize(input)).toBe(bytes);
  });
  it.each(['', 'lots', '-1mb', '0', 0, 1.5])('when given %p then it is not a size', (input) => {
    expect(parseByteSize(input)).toBeNull();
  });
});
