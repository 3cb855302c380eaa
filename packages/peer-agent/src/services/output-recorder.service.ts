import type { Logger } from 'pino';

/** The line appended once to the stored output when the cap is reached (ivis-protocol.md 3.4). */
export const OUTPUT_CAP_NOTICE = 'INFO: max output storage capacity reached\n';

export interface OutputRecorderOptions {
  maxBytes: number;
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
 * A run's stdout: capped, kept in memory for the final status push, and
 * flushed to Redis and to IVIS-core at most once per `flushMs` (the RJR
 * flushes its DB and emits at most once a second). Writes to Redis are
 * serialised so the stored output keeps its order.
 */
export class OutputRecorder {
  private bytes = 0;
  private capReached = false;
  private capAnnounced = false;
  private readonly kept: string[] = [];
  private pending: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
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
      this.pending.push(accepted);
    }
    if (this.capReached) this.kept.push(OUTPUT_CAP_NOTICE);
    this.timer ??= setTimeout(() => this.flush(), this.options.flushMs);
  }

  /** The whole stored output (with the cap notice when it applies). */
  text(): string {
    return this.kept.join('');
  }

  /** Flushes what is buffered and waits for every write. */
  async close(): Promise<void> {
    this.flush();
    await this.chain;
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const chunks = this.pending;
    this.pending = [];
    const announceCap = this.capReached && !this.capAnnounced;
    if (announceCap) this.capAnnounced = true;
    if (chunks.length === 0 && !announceCap) return;
    const stored = chunks.join('') + (announceCap ? OUTPUT_CAP_NOTICE : '');
    this.chain = this.chain.then(async () => {
      if (!this.detached) await this.store(stored);
      this.options.emit(chunks);
      if (announceCap) this.options.capped();
    });
  }

  private async store(text: string): Promise<void> {
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
