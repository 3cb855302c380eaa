import fs from 'node:fs';
import path from 'node:path';

/*
 * The run body validator's lane for the archive's bytes (run-body.validator.ts):
 * where a run of elements spelled as JSON.stringify writes bytes (1 to 3
 * digits and a comma, no leading zero, at most 255) ends. Nearly all of a
 * large body is this array, so this is where its validation time goes.
 *
 * Two lanes agree on every input (bytes-lane.test.ts): the WebAssembly SIMD
 * one (`wasm/bytes-lane.wat`, 16 bytes at a time; 6-7 ms for a 9.6 MB
 * body, against 14-38 ms in JavaScript depending on the bytes: `npm run
 * bench:gateway:validator`) reads what it can of a chunk, and
 * the JavaScript one reads on from there, element by element, to the same
 * place it would have reached alone. Without WebAssembly SIMD (or without
 * the .wasm file) only the JavaScript lane runs: slower, not different.
 */

/**
 * How much of a chunk one scan reads: the wasm's memory (one 64 KiB page)
 * less one block, which holds a non-digit after what was copied, so a scan
 * never sees bytes left from an earlier chunk. A multiple of 16.
 */
const WINDOW = 65536 - 16;
/** Shorter stretches are not worth copying into the wasm's memory. */
const SIMD_MIN = 64;
/**
 * The JavaScript lane takes an element only when it starts at least 4 bytes
 * before the chunk's end. The SIMD lane takes elements up to a comma at most
 * TAIL + 1 bytes before the end, so an element of 2 bytes or more it takes
 * starts at least 4 before: what the lanes take together is exactly what the
 * JavaScript lane takes alone (a test reads every alignment).
 */
const TAIL = 2;

/*
 * WebAssembly is a global of Node.js that the project's lib (ES2023, no DOM)
 * does not declare: the little of it used here.
 */
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
};

interface Simd {
  memory: Uint8Array;
  scan: (len: number) => number;
}

export type BytesLaneKind = { kind: 'wasm-simd' } | { kind: 'javascript'; reason: string };

const WASM_FILE = path.join(__dirname, '..', '..', 'wasm', 'bytes-lane.wasm');

function loadSimd(): Simd | string {
  try {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(WASM_FILE)));
    const { memory, scan } = instance.exports as { memory: { buffer: ArrayBuffer }; scan: Simd['scan'] };
    return { memory: new Uint8Array(memory.buffer, 0, WINDOW + 16), scan };
  } catch (err) {
    return `${WASM_FILE}: ${err instanceof Error ? err.message : String(err)}`;
  }
}

const loaded = loadSimd();
/** The SIMD lane, when it loaded; why not, when it did not. */
const available: Simd | null = typeof loaded === 'string' ? null : loaded;
const unavailable: string | null = typeof loaded === 'string' ? loaded : null;
let simd = available;

/** Which lane reads the archive's bytes here (the gateway logs it at start). */
export function bytesLaneKind(): BytesLaneKind {
  if (simd) return { kind: 'wasm-simd' };
  return { kind: 'javascript', reason: unavailable ?? 'turned off (useSimdBytesLane)' };
}

/** Turns the SIMD lane off (false) or back on, for tests of the JavaScript lane alone. */
export function useSimdBytesLane(enabled: boolean): void {
  simd = enabled ? available : null;
}

/** Where the run of plain elements from `from` (an element's start) ends in `chunk`: both lanes. */
export function bytesLane(chunk: Uint8Array, from: number): number {
  return jsBytesLane(chunk, simd ? simdBytesLane(simd, chunk, from) : from);
}

/** Where the SIMD lane alone stops (null when it is off), for tests: that it does the reading. */
export function simdBytesLaneStop(chunk: Uint8Array, from: number): number | null {
  return simd ? simdBytesLane(simd, chunk, from) : null;
}

/** The SIMD lane: stops at an element's start, at or before where {@link jsBytesLane} would. */
function simdBytesLane({ memory, scan }: Simd, chunk: Uint8Array, from: number): number {
  const end = chunk.length - TAIL;
  let i = from;
  while (end - i >= SIMD_MIN) {
    const len = Math.min(end - i, WINDOW);
    memory.set(chunk.subarray(i, i + len));
    memory.fill(0, len, len + 16);
    const took = scan(len);
    i += took;
    // A full window read to its last block (its last comma is in the last 4
    // bytes) goes on to the next; anything else stopped at what it does not take.
    if (len < WINDOW || took <= len - 16) break;
  }
  return i;
}

/**
 * The JavaScript lane: one element and its comma at a time, each whole in
 * the chunk with a byte to spare. Returns where it stopped: at anything else.
 */
export function jsBytesLane(chunk: Uint8Array, from: number): number {
  let i = from;
  const n = chunk.length;
  while (i + 4 <= n) {
    const d0 = chunk[i]! - 0x30;
    if (d0 < 0 || d0 > 9) break;
    const c1 = chunk[i + 1]!;
    if (c1 === 0x2c) {
      i += 2;
      continue;
    }
    const d1 = c1 - 0x30;
    if (d0 === 0 || d1 < 0 || d1 > 9) break;
    const c2 = chunk[i + 2]!;
    if (c2 === 0x2c) {
      i += 3;
      continue;
    }
    const d2 = c2 - 0x30;
    if (d2 < 0 || d2 > 9 || chunk[i + 3] !== 0x2c || d0 * 100 + d1 * 10 + d2 > 255) break;
    i += 4;
  }
  return i;
}
