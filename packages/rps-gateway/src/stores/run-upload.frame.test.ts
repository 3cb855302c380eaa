import { Command } from 'ioredis';
import fc from 'fast-check';
import { createRedisKeys } from '@rps/common';
import { setrangeHead, setrangeHeadRoom, UPLOAD_WRITE_BYTES } from './run-upload.store';

/** What ioredis itself writes for `SETRANGE key offset bytes` (the reference encoding). */
function reference(key: string, offset: number, bytes: Buffer): Buffer {
  const writable = new Command('setrange', [key, offset, bytes]).toWritable({});
  return Buffer.isBuffer(writable) ? writable : Buffer.from(writable);
}

/** The upload's frame for the same write: its head, the bytes, CRLF. */
function frame(key: string, offset: number, bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from(setrangeHead(key, offset, bytes.length)), bytes, Buffer.from('\r\n')]);
}

describe("an upload's SETRANGE frame", () => {
  const key = createRedisKeys('{rps}').runUpload('5f0c7d1e-3b2a-4c8e-9f61-2d7a0b9c4e13');

  it.each([
    ['the first write', 0, UPLOAD_WRITE_BYTES],
    ['a middle write', 7 * UPLOAD_WRITE_BYTES, UPLOAD_WRITE_BYTES],
    ['a short last write', 73 * UPLOAD_WRITE_BYTES, 1],
    ['the largest offset', Number.MAX_SAFE_INTEGER, 17],
  ])('when it is %s then its bytes are the ones ioredis writes for the same command', (_, offset, length) => {
    const bytes = Buffer.alloc(length, 0x5b);
    expect(frame(key, offset, bytes).equals(reference(key, offset, bytes))).toBe(true);
  });

  it('when the key, the offset and the bytes vary then the frame is always the reference encoding', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        (k, offset, data) => {
          const bytes = Buffer.from(data);
          expect(frame(k, offset, bytes).equals(reference(k, offset, bytes))).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('when the room for the head is worked out then every head of a full write to that key fits in it, the largest exactly', () => {
    const room = setrangeHeadRoom(key);
    for (const offset of [0, 9, 10, UPLOAD_WRITE_BYTES, 10 ** 9, Number.MAX_SAFE_INTEGER]) {
      expect(Buffer.byteLength(setrangeHead(key, offset, UPLOAD_WRITE_BYTES))).toBeLessThanOrEqual(room);
    }
    expect(Buffer.byteLength(setrangeHead(key, Number.MAX_SAFE_INTEGER, UPLOAD_WRITE_BYTES))).toBe(room);
    expect(Buffer.byteLength(setrangeHead(`${key}é`, 0, UPLOAD_WRITE_BYTES))).toBeGreaterThan(
      Buffer.byteLength(setrangeHead(key, 0, UPLOAD_WRITE_BYTES)),
    );
  });
});
