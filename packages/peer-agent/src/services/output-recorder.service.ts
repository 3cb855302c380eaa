import type { Logger } from 'pino';

/** The line appended once to the stored output when the cap is reached (ivis-protocol.md 3.4). */
export const OUTPUT_CAP_NOTICE = 'INFO: max output storage capacity reached\n';

export interface OutputRecorderOptions {
  maxBytes: number;
  /** Emits to IVIS-core at most this often (storing in Redis does not wait for it). */
  flushMs: number;
  /** Appends to the run's stored output; false when the run is gone (deleted or resubmitted). */
  append: (text: string) => Promise<boolean>;
  /** New chunks, to emit as `run/<id>/output`. */
  emit: (chunks: string[]) => void;
  /** Called once when the cap is reached, after the last chunks were emitted. */
  capped: () => void;
  logger: Logger;
}

/**
 * A run's stdout: capped, kept in memory for the final status push, written
 * to Redis as soon as it is read (a killed agent loses at most what is in
 * the one append in flight) and emitted to IVIS-core at most once per
 * `flushMs` (the RJR emits at most once a second). Chunks that arrive while an
 * append is in flight are coalesced into the next one, so Redis sees one
 * write per round trip, not per chunk; appends are serialised so the stored
 * output keeps its order.
 */
export class OutputRecorder {
  private bytes = 0;
  private capReached = false;
  private capStored = false;
  private capAnnounced = false;
  private readonly kept: string[] = [];
  /** Accepted, not yet appended to Redis. */
  private unstored: string[] = [];
  /** Accepted, not yet emitted to IVIS-core. */
  private unemitted: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private storing: Promise<void> | undefined;
  private detached = false;

  constructor(private readonly options: OutputRecorderOptions) {}

  write(chunk: string): void {
    if (this.capReached || chunk === '') return;
    const size = Buffer.byteLength(chunk, 'utf8');
    let accepted = chunk;
    if (this.bytes + size >= this.options.maxBytes) {
      accepted = truncateUtf8(chunk, this.options.maxBytes - this.bytes);
      this.capReached = true;
    }
    if (accepted !== '') {
      this.bytes += Buffer.byteLength(accepted, 'utf8');
      this.kept.push(accepted);
      this.unstored.push(accepted);
      this.unemitted.push(accepted);
    }
    if (this.capReached) this.kept.push(OUTPUT_CAP_NOTICE);
    this.store();
    this.timer ??= setTimeout(() => this.emit(), this.options.flushMs);
  }

  /** The whole stored output (with the cap notice when it applies). */
  text(): string {
    return this.kept.join('');
  }

  /** Emits what is buffered and waits until everything is stored. */
  async close(): Promise<void> {
    this.emit();
    this.store();
    while (this.storing) await this.storing;
  }

  /** Starts an append of everything not stored yet, unless one is in flight (it starts the next itself). */
  private store(): void {
    if (this.storing) return;
    const announceCap = this.capReached && !this.capStored;
    if (this.unstored.length === 0 && !announceCap) return;
    if (announceCap) this.capStored = true;
    const text = this.unstored.join('') + (announceCap ? OUTPUT_CAP_NOTICE : '');
    this.unstored = [];
    this.storing = this.append(text).finally(() => {
      this.storing = undefined;
      this.store();
    });
  }

  private emit(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const chunks = this.unemitted;
    this.unemitted = [];
    if (chunks.length > 0) this.options.emit(chunks);
    if (this.capReached && !this.capAnnounced) {
      this.capAnnounced = true;
      this.options.capped();
    }
  }

  private async append(text: string): Promise<void> {
    if (this.detached) return;
    try {
      if (!(await this.options.append(text))) {
        // The run was deleted or resubmitted: never recreate its output.
        this.detached = true;
      }
    } catch (err) {
      this.options.logger.warn({ err }, 'output append failed');
    }
  }
}

/** The longest prefix of `text` within `maxBytes` UTF-8 bytes that does not split a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (maxBytes <= 0) return '';
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  // Continuation bytes are 10xxxxxx: back off to the start of the cut character.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}
