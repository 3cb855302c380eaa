import pino from 'pino';
import { installProcessHandlers, runMain, Shutdown } from './shutdown';

const logger = pino({ level: 'silent' });

describe('Shutdown', () => {
  it('when run then steps go in insertion order and a failing step does not stop the rest', async () => {
    const order: string[] = [];
    const shutdown = new Shutdown(logger)
      .add('intake', async () => void order.push('intake'))
      .add('workers', () => Promise.reject(new Error('stuck')))
      .add('redis', async () => void order.push('redis'));
    await expect(shutdown.run('test')).resolves.toBe(false);
    expect(order).toEqual(['intake', 'redis']);
  });

  it('when run twice then the steps run once', async () => {
    let count = 0;
    const shutdown = new Shutdown(logger).add('once', async () => void count++);
    await Promise.all([shutdown.run('a'), shutdown.run('b')]);
    expect(count).toBe(1);
  });
});

describe('installProcessHandlers', () => {
  function fakeProcess() {
    const handlers = new Map<string, (arg?: unknown) => void>();
    const exits: number[] = [];
    return {
      handlers,
      exits,
      proc: {
        on: (event: string, fn: (arg?: unknown) => void) => handlers.set(event, fn),
        exit: (code?: number) => void exits.push(code ?? 0),
      } as unknown as Pick<NodeJS.Process, 'on' | 'exit'>,
    };
  }

  it('when SIGTERM arrives then the shutdown runs and the process exits 0', async () => {
    const fake = fakeProcess();
    let closed = false;
    installProcessHandlers(
      new Shutdown(logger).add('x', async () => void (closed = true)),
      logger,
      { proc: fake.proc },
    );
    fake.handlers.get('SIGTERM')!();
    await new Promise((r) => setImmediate(r));
    expect(closed).toBe(true);
    expect(fake.exits).toEqual([0]);
  });

  it('when an exception escapes then it exits non-zero after shutting down', async () => {
    const fake = fakeProcess();
    installProcessHandlers(new Shutdown(logger), logger, { proc: fake.proc });
    fake.handlers.get('uncaughtException')!(new Error('bug'));
    await new Promise((r) => setImmediate(r));
    expect(fake.exits).toEqual([1]);
  });

  it('when a step hangs then the hard timeout exits 1', async () => {
    const fake = fakeProcess();
    installProcessHandlers(
      new Shutdown(logger).add('hang', () => new Promise(() => undefined)),
      logger,
      {
        proc: fake.proc,
        hardTimeoutMs: 20,
      },
    );
    fake.handlers.get('SIGINT')!();
    await new Promise((r) => setTimeout(r, 60));
    expect(fake.exits).toEqual([1]);
  });
});

describe('runMain', () => {
  it('when start fails then one line naming the service and the cause goes to stderr and it exits 1', async () => {
    const written: string[] = [];
    const exits: number[] = [];
    runMain('rps-test', () => Promise.reject(new Error('listen EADDRINUSE 127.0.0.1:10327')), {
      exit: ((code?: number) => void exits.push(code ?? 0)) as NodeJS.Process['exit'],
      stderr: { write: (s: string) => written.push(s) } as unknown as NodeJS.Process['stderr'],
    });
    await new Promise((r) => setImmediate(r));
    expect(written).toEqual(['rps-test failed to start: listen EADDRINUSE 127.0.0.1:10327\n']);
    expect(exits).toEqual([1]);
  });
});
