import { execFileSync } from 'node:child_process';
import path from 'node:path';
import fc from 'fast-check';
import { bytesLane, bytesLaneKind, jsBytesLane, simdBytesLaneStop, useSimdBytesLane } from './bytes-lane';

/*
 * The SIMD lane against the JavaScript one (STYLE.md 15): with both, the
 * lane must stop exactly where the JavaScript lane alone stops, for any
 * bytes, from any offset, at any alignment to the SIMD lane's 16-byte blocks
 * and 64 KiB windows; and the SIMD lane must do the reading.
 */

const root = path.resolve(__dirname, '..', '..', '..', '..');

/** `count` plain elements as JSON.stringify writes them, each followed by a comma. */
function plain(count: number, seed = 1): string {
  let s = '';
  let x = seed;
  for (let i = 0; i < count; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s += `${x % 256},`;
  }
  return s;
}

/** Both lanes from `from`: the combined one must stop where JavaScript alone does. */
function expectSameStop(text: string, from = 0): number {
  const chunk = Buffer.from(text, 'latin1');
  const alone = jsBytesLane(chunk, from);
  expect(bytesLane(chunk, from)).toBe(alone);
  return alone;
}

afterEach(() => useSimdBytesLane(true));

describe('bytesLane', () => {
  it('when this machine runs it then the WebAssembly SIMD lane is in use', () => {
    expect(bytesLaneKind()).toEqual({ kind: 'wasm-simd' });
  });

  it('when bytes-lane.wasm is compared with bytes-lane.wat then it is what the text assembles to', () => {
    const out = execFileSync(
      process.execPath,
      ['scripts/assemble-wasm.js', '--check', 'packages/rps-gateway/wasm/bytes-lane.wat'],
      { cwd: root, encoding: 'utf8' },
    );
    expect(out).toContain('up to date');
  });

  it('when a long run of plain elements comes then the SIMD lane reads it to its last whole block', () => {
    const text = plain(50_000); // about 180 kB: three windows
    const chunk = Buffer.from(text, 'latin1');
    const stop = simdBytesLaneStop(chunk, 0)!;
    // Short of the end only by the 2 bytes left to JavaScript, a part block and one element.
    expect(stop).toBeGreaterThan(chunk.length - 2 - 16 - 4);
    expect(text[stop - 1]).toBe(',');
    // The last element only when it has three digits (JavaScript's 4 bytes to spare).
    expect(expectSameStop(text)).toBeGreaterThanOrEqual(chunk.length - 3);
  });

  it('when the SIMD lane is off then bytesLane is the JavaScript lane', () => {
    useSimdBytesLane(false);
    expect(bytesLaneKind()).toEqual({ kind: 'javascript', reason: 'turned off (useSimdBytesLane)' });
    expect(simdBytesLaneStop(Buffer.from(plain(100)), 0)).toBeNull();
    expect(expectSameStop(plain(100) + '256,')).toBe(plain(100).length);
  });

  it('when a run of plain elements ends at any alignment to the blocks then both lanes together stop where JavaScript does', () => {
    const clean = plain(80, 5);
    for (let end = 60; end <= clean.length; end++) {
      for (let from = 0; from < 20; from++) {
        expectSameStop(clean.slice(0, end), clean.lastIndexOf(',', from - 1) + 1);
        expectSameStop(clean.slice(0, end), from);
      }
    }
  });

  // Each rule the SIMD lane checks, broken at every offset of the first four
  // blocks (so at every lane of a block and across a block's boundary).
  it.each([
    ['over 255', '256'],
    ['over 255 in the second digit', '260'],
    ['over 255 in the first digit', '300'],
    ['a leading zero', '01'],
    ['a leading zero of three', '012'],
    ['four digits', '1234'],
    ['an empty element', ''],
    ['a space', ' 1'],
    ['a minus', '-1'],
    ['a fraction', '1.5'],
    ['an exponent', '1e2'],
    ['the closing bracket', ']'],
    ["the byte after '9'", '1:'],
    ["the byte before '0'", '/'],
    ['a byte over 0x7f', '\u00b9'],
  ])('when an element is %s then both lanes together stop where JavaScript does', (_name, bad) => {
    const clean = plain(40, 7);
    let at = 0;
    for (const element of clean.split(',').slice(0, 20)) {
      const text = clean.slice(0, at) + `${bad},` + clean.slice(at);
      expect(expectSameStop(text)).toBe(at);
      at += element.length + 1;
    }
  });

  it('when a fault sits near a 64 KiB window boundary then both lanes together stop where JavaScript does', () => {
    const clean = plain(60_000, 3);
    for (const target of [65536, 131072]) {
      for (let delta = -40; delta <= 40; delta += 3) {
        const at = clean.lastIndexOf(',', target + delta) + 1;
        const text = clean.slice(0, at) + '999,' + clean.slice(at);
        expect(expectSameStop(text)).toBe(at);
      }
    }
  });

  it('when arbitrary bytes come, from any offset, then both lanes together stop where JavaScript does', () => {
    const alphabet = '0123456789,,,,  ]-.e/:';
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 120 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: alphabet.length - 1 })), { maxLength: 4 }),
        fc.nat({ max: 40 }),
        (bytes, faults, from) => {
          const chars = bytes
            .map((b) => `${b},`)
            .join('')
            .split('');
          for (const [at, c] of faults) if (chars.length > 0) chars[at % chars.length] = alphabet[c]!;
          const text = chars.join('');
          expectSameStop(text, Math.min(from, text.length));
        },
      ),
      { numRuns: 3000 },
    );
  });
});
