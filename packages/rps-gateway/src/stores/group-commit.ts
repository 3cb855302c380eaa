/** How a {@link GroupCommit} forms its batches. */
export interface GroupCommitOptions<I> {
  /** The most items in one batch. */
  maxItems: number;
  /**
   * The most bytes (by `sizeOf`) in one batch. An item this large or larger
   * is sent alone and at once, beside the batches, so a big body never holds
   * small ones back and never waits for them.
   */
  maxBytes: number;
  sizeOf(item: I): number;
  /** Batches in Redis at the same time; items arriving meanwhile wait for the next. */
  maxInFlight: number;
  /** Told each batch's size as it is sent (metrics). */
  onBatch?: (size: number) => void;
}

interface Waiting<I, O> {
  item: I;
  resolve(result: O): void;
  reject(err: unknown): void;
}

/**
 * Group commit: callers hand in one item each and get its own result, while
 * the items that arrive during the same event-loop turn, or while
 * `maxInFlight` batches are still in Redis, go to Redis together as one command.
 * Nothing waits on a timer: an idle gateway sends a lone item at the end of
 * the turn it arrived in, and a busy one sends bigger batches, which is
 * where the per-command cost (the write, the script call, the reply) is
 * shared out. `send` answers per item, in order; an `Error` in its answer
 * fails that item alone, a rejection of `send` fails every item of the
 * batch (each caller then decides, e.g. to retry when the connection is back).
 */
export class GroupCommit<I, O> {
  private queue: Array<Waiting<I, O>> = [];
  private inFlight = 0;
  private flushScheduled = false;

  constructor(
    private readonly send: (items: I[]) => Promise<Array<O | Error>>,
    private readonly options: GroupCommitOptions<I>,
  ) {}

  run(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const waiting = { item, resolve, reject };
      if (this.options.sizeOf(item) >= this.options.maxBytes) {
        this.dispatch([waiting], false);
        return;
      }
      this.queue.push(waiting);
      if (this.inFlight < this.options.maxInFlight && !this.flushScheduled) {
        // At the end of this turn, so that items arriving in the same turn share the batch.
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          this.pump();
        });
      }
    });
  }

  /** Items waiting for a batch (not yet sent). */
  get waiting(): number {
    return this.queue.length;
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      let bytes = 0;
      let count = 0;
      while (count < this.queue.length && count < this.options.maxItems) {
        const size = this.options.sizeOf(this.queue[count]!.item);
        if (count > 0 && bytes + size > this.options.maxBytes) break;
        bytes += size;
        count++;
      }
      this.dispatch(this.queue.splice(0, count), true);
    }
  }

  private dispatch(batch: Array<Waiting<I, O>>, counted: boolean): void {
    if (counted) this.inFlight++;
    this.options.onBatch?.(batch.length);
    let sent: Promise<Array<O | Error>>;
    try {
      sent = this.send(batch.map((w) => w.item));
    } catch (err) {
      sent = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    sent
      .then(
        (results) => {
          if (results.length !== batch.length) {
            const err = new Error(`batch of ${batch.length} answered with ${results.length} results`);
            batch.forEach((w) => w.reject(err));
            return;
          }
          batch.forEach((w, i) => {
            const result = results[i]!;
            if (result instanceof Error) w.reject(result);
            else w.resolve(result);
          });
        },
        (err: unknown) => batch.forEach((w) => w.reject(err)),
      )
      .finally(() => {
        if (!counted) return;
        this.inFlight--;
        this.pump();
      });
  }
}
