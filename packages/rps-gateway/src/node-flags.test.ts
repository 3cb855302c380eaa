import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { GATEWAY_NODE_FLAGS, missingNodeFlags } from './gateway.constants';

// The gateway's heap flags (gateway.constants.ts): which ones a start lacks,
// and every launcher of the repository passing the same list.

const ROOT = path.resolve(__dirname, '../../..');
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');

describe('missingNodeFlags', () => {
  it('when node got none of the flags then it names every one', () => {
    expect(missingNodeFlags([])).toEqual([...GATEWAY_NODE_FLAGS]);
    expect(missingNodeFlags(['--enable-source-maps', '--max-old-space-size=512'])).toEqual([
      ...GATEWAY_NODE_FLAGS,
    ]);
  });

  it('when node got each flag then nothing is missing', () => {
    expect(missingNodeFlags(['--enable-source-maps', ...GATEWAY_NODE_FLAGS])).toEqual([]);
  });

  it("when an operator gave a flag a value of their own, or V8's underscore spelling, then it counts as given", () => {
    expect(missingNodeFlags(['--initial-old-space-size=256'])).toEqual([]);
    expect(missingNodeFlags(['--initial_old_space_size=64'])).toEqual([]);
  });

  it('when only a flag with the same beginning was given then it is still missing', () => {
    expect(missingNodeFlags(['--initial-old-space-size-extra=1'])).toEqual([...GATEWAY_NODE_FLAGS]);
  });
});

describe('launchers of the gateway', () => {
  it('when started by npm start or npm run dev then node gets GATEWAY_NODE_FLAGS', () => {
    const scripts = (
      JSON.parse(read('packages/rps-gateway/package.json')) as { scripts: Record<string, string> }
    ).scripts;
    expect(scripts.start).toBe(`node ${GATEWAY_NODE_FLAGS.join(' ')} dist/main.js`);
    expect(scripts.dev).toBe(
      `tsc -b && node --enable-source-maps ${GATEWAY_NODE_FLAGS.join(' ')} dist/main.js`,
    );
  });

  it('when started by docker compose then node gets GATEWAY_NODE_FLAGS', () => {
    const compose = parse(read('docker/docker-compose.yml'), { merge: true }) as {
      services: Record<string, { command?: string[] }>;
    };
    expect(compose.services['rps-gateway']?.command).toEqual([
      'node',
      ...GATEWAY_NODE_FLAGS,
      'packages/rps-gateway/dist/main.js',
    ]);
  });

  it('when started by the quick start (scripts/start.sh) then node gets GATEWAY_NODE_FLAGS', () => {
    const start = read('scripts/start.sh');
    expect(start).toContain(`gateway_node_flags=(${GATEWAY_NODE_FLAGS.join(' ')})`);
    expect(start).toContain('[ "$svc" = rps-gateway ] && flags=("${gateway_node_flags[@]}")');
    expect(start).toContain('run_bg "$svc" node "${flags[@]}" "packages/$svc/dist/main.js"');
  });
});
