import { bytesLane } from './bytes-lane';
import type { RunRequestMeta } from './run-request.parser';

/*
 * A one-pass, resumable check of a run body (ivis-protocol.md 1.3) over its
 * raw bytes, fed chunk by chunk as the upload arrives. It never rejects: it
 * either vouches for a body (every byte seen, the JSON well formed, the shape
 * one that `runRequestBodySchema` accepts) and returns its ids, or gives up,
 * and the caller asks the reference (JSON.parse + zod, `parseRunRequest`),
 * which decides and words the 400. So errors stay exactly the reference's,
 * and the fast path only has to be right when it says yes; it says "not sure"
 * to anything unusual (escapes in the keys it reads, a known key of the body
 * given twice, ids that are not plain integers, archive bytes written as 1.0
 * or 1e2).
 *
 * A state machine with an explicit stack (STYLE.md 14), no recursion, no
 * allocation per byte; the archive's byte array has its own tight loop.
 */

// Lexer states.
const S_VALUE = 0; // a value must start here
const S_ARR_FIRST = 1; // after '[': a value or ']'
const S_OBJ_FIRST = 2; // after '{': a key or '}'
const S_OBJ_KEY = 3; // after ',' in an object: a key
const S_COLON = 4;
const S_AFTER = 5; // after a value: ',' or the closing bracket
const S_STRING = 6;
const S_ESCAPE = 7;
const S_HEX = 8;
const S_NUM_MINUS = 9;
const S_NUM_ZERO = 10;
const S_NUM_INT = 11;
const S_NUM_DOT = 12;
const S_NUM_FRAC = 13;
const S_NUM_EXP = 14;
const S_NUM_EXP_SIGN = 15;
const S_NUM_EXP_DIGITS = 16;
const S_LITERAL = 17;
const S_BYTES = 18; // inside codeArchive.data, every element so far a plain byte
const S_DONE = 19;

// Frame roles.
const R_GENERIC = 0;
const R_ROOT = 1;
const R_ARCHIVE = 2;
const R_DATA = 3;

// What the value (or key) being scanned is, for the few that are read.
const V_IGNORED = 0;
const V_ROOT_KEY = 1;
const V_ARCHIVE_KEY = 2;
const V_TASK_ID = 3;
const V_JOB_ID = 4;
const V_ARCHIVE_TYPE = 5;

// S_BYTES sub-states.
const B_FIRST = 0; // after '['
const B_NEXT = 1; // after ','
const B_NUMBER = 2;
const B_AFTER = 3;

/** Known keys of the body and their presence bits. */
const ROOT_KEYS: Record<string, number> = {
  taskId: 1,
  jobId: 2,
  type: 4,
  subtype: 8,
  codeArchive: 16,
  params: 32,
  entities: 64,
  owned: 128,
  accessToken: 256,
  state: 512,
  runId: 1024,
};
const REQUIRED = 1 | 2 | 4 | 16 | 32 | 64 | 128 | 256 | 512;
const ARCHIVE_KEYS: Record<string, number> = { type: 1, data: 2 };
/** Plain integers up to 15 digits are safe integers, as `z.int()` wants. */
const PLAIN_INT = /^-?(0|[1-9][0-9]{0,14})$/;
const DIGITS = /^[0-9]+$/;

const LITERALS = ['true', 'false', 'null'];

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/**
 * Feed it the body with {@link write}, chunk by chunk; {@link result} then
 * gives the ids, or null when the reference must decide.
 */
export class RunBodyValidator {
  private state = S_VALUE;
  private failed = false;
  private readonly kinds: number[] = []; // 1 object, 2 array
  private readonly roles: number[] = [];
  /** What the string or number under way is (V_*), and its text when it is read. */
  private valueRole = V_IGNORED;
  private capture = '';
  private escaped = false;
  /** The string under way is an object key. */
  private isKey = false;
  private hexLeft = 0;
  private literal = '';
  private literalAt = 0;
  // Root and archive objects.
  private rootSeen = 0;
  private rootKey = 0;
  private archiveSeen = 0;
  private archiveKey = 0;
  private archiveIsBuffer = false;
  private dataIsArray = false;
  private dataAllBytes = false;
  private taskId = '';
  private jobId = '';
  // S_BYTES.
  /** How many bytes of the archive {@link bytesLane} read (a test checks that it takes them all). */
  laneBytes = 0;
  private bytesSub = B_FIRST;
  private byteValue = 0;
  private byteDigits = 0;

  /** Scans one more chunk of the body. */
  write(chunk: Uint8Array): void {
    let i = 0;
    const n = chunk.length;
    while (i < n && !this.failed) {
      if (this.state === S_BYTES) {
        i = this.bytes(chunk, i);
        continue;
      }
      if (this.state === S_STRING) {
        i = this.string(chunk, i);
        continue;
      }
      if (this.step(chunk[i]!)) i++;
    }
  }

  /** The ids when the whole body (all of it written) is one the schema accepts; null: ask the reference. */
  result(): RunRequestMeta | null {
    if (this.failed) return null;
    // A number may end the input ("...}" cannot, but the state machine is generic).
    if (this.state !== S_DONE) return null;
    return { taskId: Number(this.taskId), jobId: Number(this.jobId) };
  }

  private fail(): boolean {
    this.failed = true;
    return true;
  }

  /**
   * The archive's bytes: digits, commas, whitespace. Returns where it stopped.
   * The lane ({@link bytesLane}) reads runs of bytes as JSON.stringify
   * writes them; the loop below reads one element at a time what the lane
   * leaves (spaces, an element cut by the chunk's end or too near it, the
   * closing bracket) and gives the next element back to the lane.
   */
  private bytes(chunk: Uint8Array, from: number): number {
    let i = from;
    const n = chunk.length;
    let sub = this.bytesSub;
    let value = this.byteValue;
    let digits = this.byteDigits;
    scan: while (i < n) {
      if (sub === B_FIRST || sub === B_NEXT) {
        const start = i;
        i = bytesLane(chunk, i);
        if (i > start) {
          sub = B_NEXT;
          this.laneBytes += i - start;
        }
      }
      for (; i < n; i++) {
        const c = chunk[i]!;
        if (sub === B_NUMBER) {
          if (isDigit(c)) {
            if (value === 0) break scan; // a leading zero: let the generic scanner refuse it
            value = value * 10 + (c - 0x30);
            digits++;
            if (digits > 3) break scan;
            continue;
          }
          if (c === 0x2e || c === 0x65 || c === 0x45) break scan; // 1.5, 1e2: not plain bytes
          if (value > 255) this.dataAllBytes = false;
          sub = B_AFTER;
        }
        if (sub === B_AFTER) {
          if (c === 0x2c) {
            sub = B_NEXT;
            i++;
            continue scan;
          }
          if (isWs(c)) continue;
          break scan; // the closing bracket, or what the generic scanner refuses
        }
        // B_FIRST or B_NEXT: an element (or ']' right after '[').
        if (isDigit(c)) {
          sub = B_NUMBER;
          value = c - 0x30;
          digits = 1;
          continue;
        }
        if (isWs(c)) continue;
        break scan;
      }
    }
    this.bytesSub = sub;
    this.byteValue = value;
    this.byteDigits = digits;
    if (i === n) return i;
    // Something else: hand over to the generic scanner at the equivalent state.
    this.state = this.genericStateOfBytes(chunk[i]!);
    return i;
  }

  /**
   * The generic scanner's state for `c`, where {@link bytes} stopped. What
   * the generic scanner reads inside the data is never a plain byte (the loop
   * reads those), so from here on the data is not all bytes, unless `c` ends
   * it: that is the one place that says so.
   */
  private genericStateOfBytes(c: number): number {
    const sub = this.bytesSub;
    if (sub === B_AFTER) return S_AFTER; // ']', or what after() refuses
    if (c !== 0x5d) this.dataAllBytes = false; // (a number never stops at ']')
    if (sub === B_NUMBER) return this.byteValue === 0 && this.byteDigits === 1 ? S_NUM_ZERO : S_NUM_INT;
    return sub === B_FIRST ? S_ARR_FIRST : S_VALUE;
  }

  /** Inside a string; returns where it stopped. */
  private string(chunk: Uint8Array, from: number): number {
    const n = chunk.length;
    const capturing = this.valueRole !== V_IGNORED;
    let i = from;
    for (; i < n; i++) {
      const c = chunk[i]!;
      if (c === 0x22) {
        if (capturing) this.capture += latin1(chunk, from, i);
        this.state = this.isKey ? S_COLON : S_AFTER;
        this.endString();
        return i + 1;
      }
      if (c === 0x5c) {
        if (capturing) this.capture += latin1(chunk, from, i);
        this.escaped = true;
        this.state = S_ESCAPE;
        return i + 1;
      }
      if (c < 0x20) {
        this.fail();
        return i;
      }
    }
    if (capturing) this.capture += latin1(chunk, from, n);
    return n;
  }

  /** One byte in any state but S_BYTES and S_STRING; false: look at the same byte again. */
  private step(c: number): boolean {
    switch (this.state) {
      case S_VALUE:
        if (isWs(c)) return true;
        return this.startValue(c);
      case S_ARR_FIRST:
        if (isWs(c)) return true;
        if (c === 0x5d) return this.close(2);
        return this.startValue(c);
      case S_OBJ_FIRST:
      case S_OBJ_KEY:
        if (isWs(c)) return true;
        if (c === 0x7d && this.state === S_OBJ_FIRST) return this.close(1);
        if (c !== 0x22) return this.fail();
        this.startString(this.keyRole(), true);
        return true;
      case S_COLON:
        if (isWs(c)) return true;
        if (c !== 0x3a) return this.fail();
        this.state = S_VALUE;
        return true;
      case S_AFTER:
        return this.after(c);
      case S_ESCAPE:
        if (c === 0x75) {
          this.hexLeft = 4;
          this.state = S_HEX;
          return true;
        }
        if (
          c === 0x22 ||
          c === 0x5c ||
          c === 0x2f ||
          c === 0x62 ||
          c === 0x66 ||
          c === 0x6e ||
          c === 0x72 ||
          c === 0x74
        ) {
          this.state = S_STRING;
          return true;
        }
        return this.fail();
      case S_HEX:
        if (!isHex(c)) return this.fail();
        if (--this.hexLeft === 0) this.state = S_STRING;
        return true;
      case S_LITERAL:
        if (c !== this.literal.charCodeAt(this.literalAt)) return this.fail();
        if (++this.literalAt === this.literal.length) this.state = S_AFTER;
        return true;
      case S_DONE:
        return isWs(c) ? true : this.fail();
      default:
        return this.number(c);
    }
  }

  private number(c: number): boolean {
    const digit = isDigit(c);
    let next = -1;
    switch (this.state) {
      case S_NUM_MINUS:
        if (!digit) return this.fail();
        next = c === 0x30 ? S_NUM_ZERO : S_NUM_INT;
        break;
      case S_NUM_ZERO:
      case S_NUM_INT:
        if (digit && this.state === S_NUM_INT) next = S_NUM_INT;
        else if (c === 0x2e) next = S_NUM_DOT;
        else if (c === 0x65 || c === 0x45) next = S_NUM_EXP;
        else if (digit) return this.fail(); // a leading zero
        break;
      case S_NUM_DOT:
        if (!digit) return this.fail();
        next = S_NUM_FRAC;
        break;
      case S_NUM_FRAC:
        if (digit) next = S_NUM_FRAC;
        else if (c === 0x65 || c === 0x45) next = S_NUM_EXP;
        break;
      case S_NUM_EXP:
        if (c === 0x2b || c === 0x2d) next = S_NUM_EXP_SIGN;
        else if (digit) next = S_NUM_EXP_DIGITS;
        else return this.fail();
        break;
      case S_NUM_EXP_SIGN:
        if (!digit) return this.fail();
        next = S_NUM_EXP_DIGITS;
        break;
      case S_NUM_EXP_DIGITS:
        if (digit) next = S_NUM_EXP_DIGITS;
        break;
    }
    if (next >= 0) {
      if (this.valueRole !== V_IGNORED) this.capture += String.fromCharCode(c);
      this.state = next;
      return true;
    }
    // The number ended before `c`.
    this.endNumber();
    this.state = S_AFTER;
    return false;
  }

  private keyRole(): number {
    const role = this.roles[this.roles.length - 1];
    if (role === R_ROOT) return V_ROOT_KEY;
    if (role === R_ARCHIVE) return V_ARCHIVE_KEY;
    return V_IGNORED;
  }

  private startString(role: number, isKey: boolean): void {
    this.valueRole = role;
    this.isKey = isKey;
    this.capture = '';
    this.escaped = false;
    this.state = S_STRING;
  }

  private endString(): void {
    const role = this.valueRole;
    this.valueRole = V_IGNORED;
    if (role === V_IGNORED) return;
    if (this.escaped) {
      this.fail(); // keys and read values with escapes: the reference decodes them
      return;
    }
    const text = this.capture;
    switch (role) {
      case V_ROOT_KEY: {
        // `__proto__` is an own key to JSON.parse, so an unknown one here too.
        const bit = Object.hasOwn(ROOT_KEYS, text) ? ROOT_KEYS[text]! : 0;
        // A duplicate: JSON.parse keeps the last one, and a second codeArchive
        // would be judged with what the first one set.
        if (bit & this.rootSeen) this.fail();
        this.rootSeen |= bit;
        this.rootKey = bit;
        return;
      }
      case V_ARCHIVE_KEY: {
        // A key given twice needs no care: what its last value sets is what
        // counts, as with JSON.parse (type and data set all they decide anew).
        const bit = Object.hasOwn(ARCHIVE_KEYS, text) ? ARCHIVE_KEYS[text]! : 0;
        this.archiveSeen |= bit;
        this.archiveKey = bit;
        return;
      }
      case V_TASK_ID:
      case V_JOB_ID:
        if (!DIGITS.test(text)) this.fail();
        else if (role === V_TASK_ID) this.taskId = text;
        else this.jobId = text;
        return;
      case V_ARCHIVE_TYPE:
        this.archiveIsBuffer = text === 'Buffer';
        return;
    }
  }

  private endNumber(): void {
    const role = this.valueRole;
    this.valueRole = V_IGNORED;
    if (role !== V_TASK_ID && role !== V_JOB_ID) return;
    if (!PLAIN_INT.test(this.capture)) this.fail();
    else if (role === V_TASK_ID) this.taskId = this.capture;
    else this.jobId = this.capture;
  }

  /** The value starting with `c`, in its frame's role. Always consumes `c`. */
  private startValue(c: number): boolean {
    const depth = this.roles.length;
    const frame = depth === 0 ? -1 : this.roles[depth - 1]!;
    let role = V_IGNORED;
    if (frame === -1) {
      if (c !== 0x7b) return this.fail(); // the body must be an object
      return this.open(1, R_ROOT);
    }
    if (frame === R_ROOT) {
      const key = this.rootKey;
      if (key === ROOT_KEYS.taskId || key === ROOT_KEYS.jobId) {
        if (c !== 0x22 && c !== 0x2d && !isDigit(c)) return this.fail();
        role = key === ROOT_KEYS.taskId ? V_TASK_ID : V_JOB_ID;
      } else if (key === ROOT_KEYS.type || key === ROOT_KEYS.subtype) {
        if (c !== 0x22) return this.fail();
      } else if (key === ROOT_KEYS.codeArchive) {
        if (c !== 0x7b) return this.fail();
        return this.open(1, R_ARCHIVE);
      }
    } else if (frame === R_ARCHIVE) {
      if (this.archiveKey === ARCHIVE_KEYS.type) {
        if (c !== 0x22) return this.fail();
        role = V_ARCHIVE_TYPE;
      } else if (this.archiveKey === ARCHIVE_KEYS.data) {
        this.dataIsArray = c === 0x5b;
        if (this.dataIsArray) {
          this.dataAllBytes = true;
          this.open(2, R_DATA);
          this.state = S_BYTES;
          this.bytesSub = B_FIRST;
          return true;
        }
      }
    }
    if (c === 0x22) {
      this.startString(role, false);
      return true;
    }
    if (c === 0x7b) return this.open(1, R_GENERIC);
    if (c === 0x5b) return this.open(2, R_GENERIC);
    if (c === 0x2d || isDigit(c)) {
      this.valueRole = role;
      this.capture = role === V_IGNORED ? '' : String.fromCharCode(c);
      this.state = c === 0x2d ? S_NUM_MINUS : c === 0x30 ? S_NUM_ZERO : S_NUM_INT;
      return true;
    }
    for (const literal of LITERALS) {
      if (c === literal.charCodeAt(0)) {
        this.literal = literal;
        this.literalAt = 1;
        this.state = S_LITERAL;
        return true;
      }
    }
    return this.fail();
  }

  private open(kind: number, role: number): boolean {
    this.kinds.push(kind);
    this.roles.push(role);
    this.state = kind === 1 ? S_OBJ_FIRST : S_ARR_FIRST;
    return true;
  }

  private after(c: number): boolean {
    if (isWs(c)) return true;
    const kind = this.kinds[this.kinds.length - 1];
    if (kind === undefined) return this.fail();
    if (c === 0x2c) {
      // Inside the data, the generic scanner only ever reads what is not a
      // plain byte (genericStateOfBytes), so the rest stays with it.
      this.state = kind === 1 ? S_OBJ_KEY : S_VALUE;
      return true;
    }
    if (c === (kind === 1 ? 0x7d : 0x5d)) return this.close(kind);
    return this.fail();
  }

  /** Closes the innermost container (its closing bracket just read). */
  private close(kind: number): boolean {
    if (this.kinds.pop() !== kind) return this.fail();
    const role = this.roles.pop();
    if (role === R_ROOT) {
      this.state = S_DONE;
      if ((this.rootSeen & REQUIRED) !== REQUIRED) this.fail();
      return true;
    }
    if (role === R_ARCHIVE && !this.archiveOk()) return this.fail();
    this.state = S_AFTER;
    return true;
  }

  private archiveOk(): boolean {
    if (this.archiveSeen !== 3) return false;
    return !this.archiveIsBuffer || (this.dataIsArray && this.dataAllBytes);
  }
}

function latin1(chunk: Uint8Array, from: number, to: number): string {
  return to > from ? Buffer.from(chunk.buffer, chunk.byteOffset + from, to - from).toString('latin1') : '';
}

/** The ids of a body the fast path vouches for, else null (see {@link RunBodyValidator}). */
export function fastRunRequestMeta(raw: Uint8Array): RunRequestMeta | null {
  const validator = new RunBodyValidator();
  validator.write(raw);
  return validator.result();
}
