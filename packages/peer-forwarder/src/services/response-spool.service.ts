import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** How much of an answer a spool may hold for a slow peer. */
export interface SpoolLimits {
  /** Bytes queued in the peer's socket (user space) before the rest goes to a file. */
  memoryBytes: number;
  /** Cap of that file (0: no file); past it the upstream is held back. */
  fileBytes: number;
  /** A peer that takes no bytes for this long while some wait for it is given up on. */
  stallMs: number;
}

/** Where the spool writes: the peer's socket or ServerResponse (or a framing wrapper around one). */
export interface SpoolSink {
  write(chunk: Buffer): unknown;
  readonly writableLength: number;
  once(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
}

/** What the spool tells its owner. */
export interface SpoolEvents {
  /** The spool has room again after push() returned false: let the upstream go on. */
  resume(): void;
  /** The peer took nothing for `stallMs` while bytes waited for it. */
  stalled(): void;
}

const READ_CHUNK = 64 * 1024;
let fileCounter = 0;

/**
 * Proxy buffering as nginx does it (`proxy_buffering`, `proxy_max_temp_file_size`):
 * an answer is read from the upstream as fast as it comes, whatever the peer's
 * pace, so the upstream connection is free again as soon as the answer is in.
 * Up to `memoryBytes` wait in the peer's socket; beyond that the answer goes
 * to an unlinked temporary file (nothing to clean up after a crash) capped at
 * `fileBytes`; only past that cap is the upstream held back, as before.
 *
 * File I/O is synchronous: the bytes land in and come from the page cache, and
 * one ordered queue needs no second state machine for writes in flight. It
 * only happens for answers a peer reads slower than they arrive.
 */
export class ResponseSpool {
  private fd: number | null = null;
  private readPos = 0;
  private writePos = 0;
  private held = false;
  private waiting = false;
  private stallTimer: NodeJS.Timeout | undefined;
  private whenEmpty: (() => void) | null = null;
  private disposed = false;
  private readonly onDrain = () => this.drained();
  private readonly onStall = () => {
    this.stallTimer = undefined;
    if (!this.disposed) this.events.stalled();
  };

  constructor(
    private readonly limits: SpoolLimits,
    private readonly sink: SpoolSink,
    private readonly events: SpoolEvents,
  ) {}

  /** Bytes in the file, not handed to the sink yet. */
  get queued(): number {
    return this.writePos - this.readPos;
  }

  /** Takes a body chunk; false when full: hold the upstream until `events.resume()`. */
  push(chunk: Buffer): boolean {
    const { memoryBytes, fileBytes } = this.limits;
    if (this.queued === 0 && (fileBytes === 0 || this.sink.writableLength < memoryBytes))
      this.sink.write(chunk);
    else this.append(chunk);
    const memoryFull = this.sink.writableLength >= memoryBytes;
    if (memoryFull) this.waitDrain();
    if (memoryFull && (fileBytes === 0 || this.queued >= fileBytes)) this.held = true;
    return !this.held;
  }

  /** The answer is complete: `done` runs once everything has been handed to the sink. */
  end(done: () => void): void {
    if (this.queued === 0) {
      this.dispose();
      done();
    } else this.whenEmpty = done;
  }

  /** Stops for good (peer gone, exchange cut): timer and file go. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.stallTimer);
    if (this.waiting) this.sink.off('drain', this.onDrain);
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  private append(chunk: Buffer): void {
    if (this.fd === null) {
      const file = path.join(os.tmpdir(), `rps-forwarder-${process.pid}-${++fileCounter}`);
      this.fd = fs.openSync(file, 'wx+', 0o600);
      fs.unlinkSync(file);
    }
    fs.writeSync(this.fd, chunk, 0, chunk.length, this.writePos);
    this.writePos += chunk.length;
  }

  private waitDrain(): void {
    if (this.waiting || this.disposed) return;
    this.waiting = true;
    this.sink.once('drain', this.onDrain);
    this.stallTimer = setTimeout(this.onStall, this.limits.stallMs);
  }

  private drained(): void {
    this.waiting = false;
    clearTimeout(this.stallTimer);
    if (this.disposed) return;
    const { memoryBytes, fileBytes } = this.limits;
    while (this.queued > 0 && this.sink.writableLength < memoryBytes) {
      const n = Math.min(READ_CHUNK, this.queued);
      const piece = Buffer.allocUnsafe(n);
      fs.readSync(this.fd!, piece, 0, n, this.readPos);
      this.readPos += n;
      this.sink.write(piece);
    }
    if (this.queued === 0) this.readPos = this.writePos = 0;
    if (this.sink.writableLength >= memoryBytes) this.waitDrain();
    if (this.held && (fileBytes === 0 ? !this.waiting : this.queued < fileBytes)) {
      this.held = false;
      this.events.resume();
    }
    if (this.queued === 0 && this.whenEmpty) {
      const done = this.whenEmpty;
      this.whenEmpty = null;
      this.dispose();
      done();
    }
  }
}
