import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// The entry path every service's main.ts takes, run as a real process from the
// built package: a bad file must print one line per problem and exit 2.
const commonDist = path.resolve(__dirname, '../dist/index.js');

function runEntry(configText: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-entry-'));
  const file = path.join(dir, 'bad.yaml');
  fs.writeFileSync(file, configText);
  const script = `require(${JSON.stringify(commonDist)}).loadConfigOrExit(['gateway', 'agent']); console.log('started');`;
  const result = spawnSync(process.execPath, ['-e', script], {
    env: { ...process.env, RPS_CONFIG: file },
    encoding: 'utf8',
  });
  fs.rmSync(dir, { recursive: true, force: true });
  return { ...result, file };
}

describe('a service start with a bad config file', () => {
  it('when a value has the wrong type and a key is missing then it prints one line per problem and exits 2', () => {
    const result = runEntry(
      [
        'gateway:',
        '  listen: { port: "ten thousand" }',
        'agent:',
        '  address: 10.0.0.2',
        '  executor: { kind: builtin }',
        '  ivis: { trustedUrlBase: "http://10.0.0.1:10329", sandboxUrlBase: "http://10.0.0.1:10330", es: { host: 10.0.0.1, port: 10328 } }',
        '',
      ].join('\n'),
    );
    expect(result.status).toBe(2);
    expect(result.stdout).not.toContain('started');
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines).toEqual([
      `${result.file}: gateway.listen.port: ${lines[0]?.split('gateway.listen.port: ')[1]}`,
      `${result.file}: agent.id: ${lines[1]?.split('agent.id: ')[1]}`,
    ]);
    expect(lines[0]).toMatch(/expected number/i);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('when the config is valid then the service goes on', () => {
    const result = runEntry(
      'gateway:\n  clients: [{ name: ivis-core, serial: "4096", issuer: "CN=IVIS-core CA" }]\nagent:\n  id: p1\n  address: 10.0.0.2\n  executor: { kind: rjr, url: "http://127.0.0.1:8080" }\n  ivis: { trustedUrlBase: "http://a:1", sandboxUrlBase: "http://a:2", es: { host: a, port: 3 } }\n',
    );
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe('started');
  });

  it('when the gateway names no allowed client and allowAnyClientOfCa is not set then it prints one line and exits 2', () => {
    const result = runEntry(
      'agent:\n  id: p1\n  address: 10.0.0.2\n  executor: { kind: rjr, url: "http://127.0.0.1:8080" }\n  ivis: { trustedUrlBase: "http://a:1", sandboxUrlBase: "http://a:2", es: { host: a, port: 3 } }\n',
    );
    expect(result.status).toBe(2);
    expect(result.stdout).not.toContain('started');
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${result.file}: gateway.clients: must name IVIS-core's client certificate`);
  });
});
