import { randomUUID } from 'node:crypto';
import { Command, type Redis } from 'ioredis';
import { appError, type RedisKeys } from '@rps/common';

/**
 * How long a staged upload lives without its submit: set by its first
 * write, it bounds what an upload cut short by a killed gateway leaves in
 * Redis. IVIS-core gives up after 2 s, so an upload still going after a
 * minute is long dead; the margin covers a loaded machine.
 */
export const UPLOAD_TTL_MS = 60_000;
/** Bytes gathered from the socket before they go to Redis as one APPEND (fewer, larger commands). */
export const UPLOAD_WRITE_BYTES = 128 * 1024;
/**
 * Bytes sent to Redis but not yet acknowledged, above which the upload asks
 * its reader to pause the socket: the gateway holds at most about this much
 * (plus one write being gathered) of an upload in memory, whatever its size.
 */
export const UPLOAD_WINDOW_BYTES = 4 * UPLOAD_WRITE_BYTES;
/**
 * Frames kept for reuse once Redis answered them (at most this many, about
 * 2 MiB): enough for two uploads' windows, which is all that arrives at a
 * time (IVIS-core's client caps a body at 10 MB, bodies above the staging
 * threshold are rare), so a steady stream of uploads allocates no new frames.
 */
export const UPLOAD_FRAME_POOL = 16;

/**
 * The RESP encoding of `SETRANGE key offset <bytes>` up to where the bytes
 * begin: `*4`, then each argument as a bulk string (`$<length>` and the
 * bytes, each line ended by CRLF), the last one's bytes left to the caller.
 */
export function setrangeHead(key: string, offset: number, bytes: number): string {
  const offsetText = String(offset);
  return (
    `*4\r\n$8\r\nsetrange\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n` +
    `$${offsetText.length}\r\n${offsetText}\r\n$${bytes}\r\n`
  );
}

/** The longest head a write of {@link UPLOAD_WRITE_BYTES} to `key` can have (the largest offset). */
export function setrangeHeadRoom(key: string): number {
  return Buffer.byteLength(setrangeHead(key, Number.MAX_SAFE_INTEGER, UPLOAD_WRITE_BYTES));
}

/**
 * A command ioredis sends as bytes already encoded: given a Buffer argument,
 * ioredis copies it into a new frame of its own on every write, on top of
 * the copy that gathers an upload's chunks; an upload instead copies its
 * chunks once, straight into the frame it sends (run-upload.frame.test.ts
 * holds the encoding to ioredis's own). `toWritable` is public in ioredis's
 * typings; replies, timeouts and errors are ioredis's as for any command.
 */
class EncodedCommand extends Command {
  constructor(
    name: string,
    private readonly frame: Buffer,
  ) {
    super(name, []);
  }

  override toWritable(): Buffer {
    return this.frame;
  }
}

/** A run body staged in Redis by a finished upload: its keys and its length in bytes. */
export interface StagedRunBody {
  /** The body (`RedisKeys.runUpload`). */
  readonly stagedKey: string;
  /** Written after the last byte (`RedisKeys.runUploadSealed`): the body is whole only if it is there. */
  readonly sealKey: string;
  readonly length: number;
}

/** Whether a run body is staged in Redis rather than held in memory. */
export function isStagedRunBody(body: Buffer | StagedRunBody): body is StagedRunBody {
  return !Buffer.isBuffer(body);
}

/**
 * Large run bodies staged in Redis as they arrive (`RedisKeys.runUpload`),
 * on a connection of their own: the megabytes of an upload never queue in
 * front of other runs' commands on the request connection, and the submit
 * script later renames the staged key into place (run-submit-staged-15.lua)
 * instead of carrying the body as an argument.
 */
export class RunUploadStore {
  /** Bumped whenever the connection closes: an upload that saw a close may have lost a write. */
  private closes = 0;
  private redis: Redis | null = null;
  private readonly active = new Set<RunUpload>();
  /** Frames Redis has answered, free for the next writes ({@link UPLOAD_FRAME_POOL} at most). */
  private readonly frames: Buffer[] = [];

  constructor(
    private readonly createRedis: () => Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** How many frames wait for reuse (for tests). */
  pooledFrames(): number {
    return this.frames.length;
  }

  /** The upload connection, opened on first use (the gateway's `start` opens it). */
  connection(): Redis {
    if (this.redis) return this.redis;
    const redis = this.createRedis();
    redis.on('close', () => {
      this.closes += 1;
      for (const upload of [...this.active]) upload.fail(connectionLost());
    });
    this.redis = redis;
    return redis;
  }

  /** Starts staging a body of `length` bytes; nothing is written before its first {@link RunUpload.write}. */
  begin(length: number): RunUpload {
    const id = randomUUID();
    const upload = new RunUpload(
      this.connection(),
      { stagedKey: this.keys.runUpload(id), sealKey: this.keys.runUploadSealed(id), length },
      this.closes,
      {
        closes: () => this.closes,
        done: (u) => this.active.delete(u),
        takeFrame: (bytes) => {
          const frame = this.frames.pop();
          return frame && frame.length >= bytes ? frame : Buffer.allocUnsafe(bytes);
        },
        giveFrame: (frame) => {
          if (this.frames.length < UPLOAD_FRAME_POOL) this.frames.push(frame);
        },
      },
    );
    this.active.add(upload);
    return upload;
  }

  async close(closeRedis: (redis: Redis) => Promise<void>): Promise<void> {
    const redis = this.redis;
    this.redis = null;
    if (redis) await closeRedis(redis);
  }
}

function connectionLost(): Error {
  return appError('redis_unavailable', 'Redis is unavailable: the connection dropped during the upload', [
    { path: 'redis', message: 'connection' },
  ]);
}

/** What an upload needs of its store. */
interface RunUploadOwner {
  closes(): number;
  done(upload: RunUpload): void;
  /** A frame of at least `bytes` bytes: a pooled one, or a new one. */
  takeFrame(bytes: number): Buffer;
  /** A frame no write refers to any more (Redis answered it, or it was never sent). */
  giveFrame(frame: Buffer): void;
}

/**
 * One body on its way into Redis, all on one connection so the writes
 * apply in order: the first creates the staging key with its TTL and at its
 * full length (one allocation in Redis: growing a string by APPEND copies it
 * again and again, which a profile showed costing Redis about 200 ms per
 * 10 MB body), the next ones SETRANGE the bytes at their offsets, and the
 * seal key, written last, says the body is whole. Any failed write, or a
 * close of the connection while the upload lasts, fails the whole upload;
 * the submit script requires the seal, which a Redis restart that lost the
 * tail of the writes loses too (the AOF keeps their order).
 *
 * The chunks are copied once, into a frame that already has room for the
 * SETRANGE's head, and the frame is sent as it is ({@link EncodedCommand}).
 * A frame goes back to the store's pool only once Redis answered its write
 * (so the socket has sent every byte of it); a frame whose write failed is
 * dropped, since the socket may still hold it.
 */
export class RunUpload {
  /** The frame being filled, its room for the head, and the body bytes in it. */
  private frame: Buffer | null = null;
  private readonly headRoom: number;
  private filled = 0;
  /** Bytes sent and not yet acknowledged. */
  private inFlight = 0;
  /** Writes not yet answered (the small ones too). */
  private pending = 0;
  private sent = 0;
  private error: Error | null = null;
  private finished = false;
  private discarded = false;
  private readonly settled = new Set<() => void>();
  /** Called once when the upload fails (a write refused, the connection lost). */
  onError: (err: unknown) => void = () => undefined;
  /** Called when a reader told to pause may read on. */
  onDrain: () => void = () => undefined;

  constructor(
    private readonly redis: Redis,
    readonly staged: StagedRunBody,
    private readonly closesAtStart: number,
    private readonly owner: RunUploadOwner,
  ) {
    this.headRoom = setrangeHeadRoom(staged.stagedKey);
  }

  /** Takes a chunk of the body; false when the reader should pause until {@link onDrain}. */
  write(chunk: Buffer): boolean {
    if (this.error !== null || this.finished) return true;
    let at = 0;
    while (at < chunk.length) {
      this.frame ??= this.owner.takeFrame(this.headRoom + UPLOAD_WRITE_BYTES + 2);
      const n = Math.min(chunk.length - at, UPLOAD_WRITE_BYTES - this.filled);
      chunk.copy(this.frame, this.headRoom + this.filled, at, at + n);
      this.filled += n;
      at += n;
      if (this.filled === UPLOAD_WRITE_BYTES) this.flush();
      if (this.error !== null) return true;
    }
    return this.inFlight < UPLOAD_WINDOW_BYTES;
  }

  /**
   * Sends what is left and the seal, and resolves once Redis holds the whole
   * body; rejects as the upload failed. The caller has checked that exactly
   * `length` bytes arrived.
   */
  async end(): Promise<StagedRunBody> {
    this.flush();
    if (this.error === null && this.sent === this.staged.length) {
      this.track(this.redis.set(this.staged.sealKey, String(this.sent), 'PX', UPLOAD_TTL_MS), 0);
    }
    await this.idle();
    this.finished = true;
    this.releaseFrame();
    this.owner.done(this);
    if (this.error === null && this.owner.closes() !== this.closesAtStart) this.error = connectionLost();
    if (this.error === null && this.sent !== this.staged.length) throw new Error('upload ended short');
    if (this.error !== null) throw this.error;
    return this.staged;
  }

  /** The staged bytes (for the reference parser, when the one-pass validator had no verdict). */
  async read(): Promise<Buffer> {
    const body = await this.redis.getBuffer(this.staged.stagedKey);
    if (body?.length !== this.sent) throw connectionLost();
    return body;
  }

  /**
   * Deletes the staging keys, after the writes already sent (same
   * connection, so the DEL comes last); a no-op once the submit renamed them.
   * Best effort: the TTL removes what a failed DEL leaves.
   */
  discard(): void {
    if (this.discarded) return;
    this.discarded = true;
    this.finished = true;
    this.owner.done(this);
    this.releaseFrame();
    if (this.sent === 0 && this.inFlight === 0) return;
    this.redis.del(this.staged.stagedKey, this.staged.sealKey).catch(() => undefined);
  }

  /** Fails the upload from outside (the connection closed). */
  fail(err: unknown): void {
    if (this.error !== null || this.finished) return;
    this.error = err instanceof Error ? err : new Error(String(err));
    this.onError(err);
    this.wake();
  }

  /** Gives the frame being filled, never sent, back to the pool. */
  private releaseFrame(): void {
    if (this.frame) this.owner.giveFrame(this.frame);
    this.frame = null;
    this.filled = 0;
  }

  private flush(): void {
    const frame = this.frame;
    if (frame === null || this.filled === 0 || this.error !== null) return;
    const bytes = this.filled;
    this.frame = null;
    this.filled = 0;
    const offset = this.sent;
    const { stagedKey, length } = this.staged;
    if (offset === 0) {
      // Created empty with its TTL, then grown once to the full length (zeros until written).
      this.track(this.redis.set(stagedKey, '', 'PX', UPLOAD_TTL_MS), 0);
      this.track(this.redis.setrange(stagedKey, length - 1, '\0'), 0);
    }
    this.sent += bytes;
    const head = setrangeHead(stagedKey, offset, bytes);
    const start = this.headRoom - Buffer.byteLength(head);
    frame.write(head, start, 'utf8');
    frame.write('\r\n', this.headRoom + bytes, 'latin1');
    const command = new EncodedCommand('setrange', frame.subarray(start, this.headRoom + bytes + 2));
    void this.redis.sendCommand(command);
    this.track(command.promise, bytes, frame);
  }

  /**
   * Counts a write of `bytes` in flight until Redis answers it; a refused
   * write fails the upload. An answered write's frame goes back to the pool.
   */
  private track(write: Promise<unknown>, bytes: number, frame?: Buffer): void {
    this.inFlight += bytes;
    this.pending += 1;
    write.then(
      () => {
        if (frame) this.owner.giveFrame(frame);
        const wasFull = this.inFlight >= UPLOAD_WINDOW_BYTES;
        this.inFlight -= bytes;
        this.pending -= 1;
        if (wasFull && this.inFlight < UPLOAD_WINDOW_BYTES && this.error === null) this.onDrain();
        this.wake();
      },
      (err: unknown) => {
        this.inFlight -= bytes;
        this.pending -= 1;
        this.fail(err);
        this.wake();
      },
    );
  }

  private idle(): Promise<void> {
    if (this.pending === 0 || this.error !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (this.pending !== 0 && this.error === null) return;
        this.settled.delete(check);
        resolve();
      };
      this.settled.add(check);
    });
  }

  private wake(): void {
    for (const check of [...this.settled]) check();
  }
}
