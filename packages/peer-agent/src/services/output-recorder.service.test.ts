import pino from 'pino';
import { waitFor } from '@rps/common/testing';
import { OUTPUT_CAP_NOTICE, OutputRecorder, truncateUtf8 } from './output-recorder.service';

function recorder(maxBytes: number, appendResult = true) {
  const stored: string[] = [];
  const emitted: string[][] = [];
  const gates: Array<() => void> = [];
  let capped = 0;
  let hold = false;
  const rec = new OutputRecorder({
    maxBytes,
    // Far beyond any test: storing must not wait for the emit period.
    flushMs: 10_000,
    append: async (text) => {
      stored.push(text);
      if (hold) await new Promise<void>((resolve) => gates.push(resolve));
      return appendResult;
    },
    emit: (chunks) => emitted.push(chunks),
    capped: () => capped++,
    logger: pino({ level: 'silent' }),
  });
  return {
    rec,
    stored,
    emitted,
    capped: () => capped,
    /** Appends wait until released (a slow Redis). */
    holdAppends: () => (hold = true),
    releaseAppend: () => gates.shift()?.(),
  };
}

describe('OutputRecorder', () => {
  it('when chunks arrive between emits then each is stored at once, in order, and they are emitted together, once', async () => {
    const { rec, stored, emitted } = recorder(1000);
    rec.write('a\n');
    expect(stored).toEqual(['a\n']);
    rec.write('b\n');
    await rec.close();
    rec.write('c\n');
    await rec.close();
    expect(stored.join('')).toBe('a\nb\nc\n');
    expect(emitted).toEqual([['a\n', 'b\n'], ['c\n']]);
    expect(rec.text()).toBe('a\nb\nc\n');
  });

  it('when chunks arrive while an append is in flight then they go to Redis together in the next append', async () => {
    const { rec, stored, holdAppends, releaseAppend } = recorder(1000);
    holdAppends();
    rec.write('1');
    rec.write('2');
    rec.write('3');
    expect(stored).toEqual(['1']);
    releaseAppend();
    await waitFor('second append', () => stored.length === 2);
    expect(stored).toEqual(['1', '23']);
    releaseAppend();
    const closed = rec.close();
    await closed;
    expect(stored).toEqual(['1', '23']);
  });

  it('when the cap is crossed then the output is cut there, the notice is stored once and the cap announced once', async () => {
    const { rec, stored, capped } = recorder(10);
    rec.write('12345678');
    rec.write('abcdef');
    rec.write('more');
    await rec.close();
    expect(rec.text()).toBe(`12345678ab${OUTPUT_CAP_NOTICE}`);
    expect(stored.join('')).toBe(rec.text());
    expect(capped()).toBe(1);
  });

  it('when the run is gone then nothing more is stored', async () => {
    const { rec, stored } = recorder(100, false);
    rec.write('x');
    await rec.close();
    rec.write('y');
    await rec.close();
    expect(stored).toEqual(['x']);
  });
});

describe('truncateUtf8', () => {
  it('when the cut falls inside a character then the whole character is left out', () => {
    expect(truncateUtf8('aé', 2)).toBe('a');
    expect(truncateUtf8('aé', 3)).toBe('aé');
    expect(truncateUtf8('€€', 4)).toBe('€');
  });
});
