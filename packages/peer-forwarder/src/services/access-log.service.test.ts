import { createLogger } from '@rps/common';
import { AccessLog, type AccessEntry } from './access-log.service';

const entry: AccessEntry = {
  route: 'sandbox',
  peer: null,
  allowedBy: '10.0.0.0/8',
  source: '10.0.0.2',
  method: 'GET',
  path: '/a "quoted"\npath',
  status: 502,
  bytesIn: 0,
  bytesOut: 0,
  ms: 1.5,
  error: 'upstream closed the connection',
};

function setup(bufferChars = 0, level = 'info') {
  const chunks: string[] = [];
  const logger = createLogger({
    name: 'peer-forwarder',
    level,
    destination: { write: (s: string) => chunks.push(s) },
  });
  return { chunks, log: new AccessLog(logger.child({ component: 'access' }, { redact: [] }), bufferChars) };
}

describe('AccessLog', () => {
  it('when a line is written then it is the JSON line pino would write, with escaping', () => {
    const { chunks, log } = setup();
    log.write(entry);
    expect(chunks).toHaveLength(1);
    expect(chunks[0]!.endsWith('\n')).toBe(true);
    const line = JSON.parse(chunks[0]!) as Record<string, unknown>;
    expect(line).toEqual({
      level: 30,
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      service: 'peer-forwarder',
      pid: process.pid,
      name: 'peer-forwarder',
      component: 'access',
      ...entry,
      msg: 'access',
    });
    expect(Math.abs(Date.parse(line.time as string) - Date.now())).toBeLessThan(5000);
  });

  it('when buffering then lines reach the destination in chunks and on flush', () => {
    const { chunks, log } = setup(1000);
    log.write({ ...entry, allowedBy: undefined, error: undefined, peer: 'p1' });
    log.write(entry);
    expect(chunks).toHaveLength(0);
    log.flush();
    expect(chunks).toHaveLength(1);
    const lines = chunks[0]!
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.peer, 'allowedBy' in l, 'error' in l])).toEqual([
      ['p1', false, false],
      [null, true, true],
    ]);
    log.flush();
    expect(chunks).toHaveLength(1);
  });

  it('when the level is above info then nothing is written', () => {
    const { chunks, log } = setup(0, 'warn');
    log.write(entry);
    log.flush();
    expect(chunks).toEqual([]);
  });
});
