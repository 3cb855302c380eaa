import pino from 'pino';
import { OUTPUT_CAP_NOTICE, OutputRecorder, truncateUtf8 } from './output-recorder.service';

function recorder(maxBytes: number, appendResult = true) {
  const stored: string[] = [];
  const emitted: string[][] = [];
  let capped = 0;
  const rec = new OutputRecorder({
    maxBytes,
    flushMs: 10_000,
    append: async (text) => {
      stored.push(text);
      return appendResult;
    },
    emit: (chunks) => emitted.push(chunks),
    capped: () => capped++,
    logger: pino({ level: 'silent' }),
  });
  return { rec, stored, emitted, capped: () => capped };
}

describe('OutputRecorder', () => {
  it('when chunks arrive between flushes then they are stored and emitted together, once', async () => {
    const { rec, stored, emitted } = recorder(1000);
    rec.write('a\n');
    rec.write('b\n');
    await rec.close();
    rec.write('c\n');
    await rec.close();
    expect(stored).toEqual(['a\nb\n', 'c\n']);
    expect(emitted).toEqual([['a\n', 'b\n'], ['c\n']]);
    expect(rec.text()).toBe('a\nb\nc\n');
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
