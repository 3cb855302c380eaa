import { EventEmitter } from 'node:events';
import { ResponseSpool, type SpoolSink } from './response-spool.service';

/** A peer socket stand-in: keeps what it was given; `take()` is the peer reading. */
class FakeSink extends EventEmitter implements SpoolSink {
  readonly written: Buffer[] = [];
  writableLength = 0;

  write(chunk: Buffer): boolean {
    this.written.push(Buffer.from(chunk));
    this.writableLength += chunk.length;
    return this.writableLength < 16;
  }

  /** The peer reads everything buffered: the socket drains. */
  take(): void {
    this.writableLength = 0;
    this.emit('drain');
  }

  get all(): string {
    return Buffer.concat(this.written).toString();
  }
}

const chunk = (text: string) => Buffer.from(text);

describe('ResponseSpool', () => {
  const events = () => ({ resume: jest.fn(), stalled: jest.fn() });

  it('when the peer keeps up then chunks go straight to the socket and the answer ends at once', () => {
    const sink = new FakeSink();
    const ev = events();
    const spool = new ResponseSpool({ memoryBytes: 100, fileBytes: 100, stallMs: 60_000 }, sink, ev);
    expect(spool.push(chunk('hello '))).toBe(true);
    expect(spool.push(chunk('world'))).toBe(true);
    const done = jest.fn();
    spool.end(done);
    expect(done).toHaveBeenCalledTimes(1);
    expect(sink.all).toBe('hello world');
    expect(spool.queued).toBe(0);
  });

  it('when the peer stops reading then the answer spills to the file, in order, and ends after the peer took it all', () => {
    const sink = new FakeSink();
    const ev = events();
    const spool = new ResponseSpool({ memoryBytes: 4, fileBytes: 1000, stallMs: 60_000 }, sink, ev);
    for (const piece of ['aaaa', 'bbbb', 'cccc', 'dddd']) expect(spool.push(chunk(piece))).toBe(true);
    expect(sink.all).toBe('aaaa');
    expect(spool.queued).toBe(12);
    const done = jest.fn();
    spool.end(done);
    expect(done).not.toHaveBeenCalled();
    // The reader is slow: each drain lets one memory's worth out of the file.
    while (spool.queued > 0) sink.take();
    sink.take();
    expect(sink.all).toBe('aaaabbbbccccdddd');
    expect(done).toHaveBeenCalledTimes(1);
    expect(ev.resume).not.toHaveBeenCalled();
  });

  it('when the file cap is reached then the upstream is held back and resumed once there is room again', () => {
    const sink = new FakeSink();
    const ev = events();
    const spool = new ResponseSpool({ memoryBytes: 4, fileBytes: 8, stallMs: 60_000 }, sink, ev);
    expect(spool.push(chunk('aaaa'))).toBe(true);
    expect(spool.push(chunk('bbbb'))).toBe(true);
    expect(spool.push(chunk('cccc'))).toBe(false);
    sink.take();
    expect(ev.resume).toHaveBeenCalledTimes(1);
    expect(spool.push(chunk('dddd'))).toBe(true);
    while (spool.queued > 0) sink.take();
    expect(sink.all).toBe('aaaabbbbccccdddd');
    // The socket is full again (its stall timer runs): the exchange ends as the forwarder ends it.
    spool.dispose();
  });

  it('when there is no file (fileBytes 0) then a full socket holds the upstream back at once', () => {
    const sink = new FakeSink();
    const ev = events();
    const spool = new ResponseSpool({ memoryBytes: 4, fileBytes: 0, stallMs: 60_000 }, sink, ev);
    expect(spool.push(chunk('aaaa'))).toBe(false);
    sink.take();
    expect(ev.resume).toHaveBeenCalledTimes(1);
  });

  it('when the peer takes nothing for stallMs while bytes wait then stalled is reported, once', () => {
    jest.useFakeTimers();
    try {
      const sink = new FakeSink();
      const ev = events();
      const spool = new ResponseSpool({ memoryBytes: 4, fileBytes: 100, stallMs: 1000 }, sink, ev);
      spool.push(chunk('aaaa'));
      spool.push(chunk('bbbb'));
      jest.advanceTimersByTime(999);
      expect(ev.stalled).not.toHaveBeenCalled();
      jest.advanceTimersByTime(1);
      expect(ev.stalled).toHaveBeenCalledTimes(1);
      spool.dispose();
      jest.advanceTimersByTime(10_000);
      expect(ev.stalled).toHaveBeenCalledTimes(1);
    } finally {
      jest.useRealTimers();
    }
  });
});
