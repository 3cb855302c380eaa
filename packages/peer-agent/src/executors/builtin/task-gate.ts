/** A held lease on one task's build directory. */
export interface TaskLease {
  release(): void;
  /** Exclusive leases only: turn into a shared lease without letting anyone in between. */
  downgrade(): void;
}

interface Waiter {
  exclusive: boolean;
  grant: () => void;
}

interface GateState {
  readers: number;
  writer: boolean;
  queue: Waiter[];
}

/**
 * A first-come-first-served readers/writer lock per task id. Runs hold a
 * shared lease on their task's build directory while they execute; building
 * and deleting a task take it exclusively. So a task delete (or a rebuild for
 * a new archive) waits until the task's running jobs on this peer are done,
 * and two runs of one task never build the same directory at once.
 */
export class TaskGate {
  private readonly states = new Map<number, GateState>();

  shared(taskId: number, signal?: AbortSignal): Promise<TaskLease> {
    return this.acquire(taskId, false, signal);
  }

  exclusive(taskId: number, signal?: AbortSignal): Promise<TaskLease> {
    return this.acquire(taskId, true, signal);
  }

  /** Whether anything holds or waits for the task (for tests and logs). */
  busy(taskId: number): boolean {
    return this.states.has(taskId);
  }

  private acquire(taskId: number, exclusive: boolean, signal?: AbortSignal): Promise<TaskLease> {
    const state = this.stateOf(taskId);
    return new Promise<TaskLease>((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortError());
        return;
      }
      const waiter: Waiter = {
        exclusive,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.lease(taskId, exclusive));
        },
      };
      const onAbort = () => {
        state.queue = state.queue.filter((w) => w !== waiter);
        this.pump(taskId);
        reject(abortError());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      state.queue.push(waiter);
      this.pump(taskId);
    });
  }

  private lease(taskId: number, exclusive: boolean): TaskLease {
    let held: 'shared' | 'exclusive' | 'none' = exclusive ? 'exclusive' : 'shared';
    return {
      release: () => {
        const state = this.stateOf(taskId);
        if (held === 'exclusive') state.writer = false;
        if (held === 'shared') state.readers--;
        held = 'none';
        this.pump(taskId);
      },
      downgrade: () => {
        if (held !== 'exclusive') return;
        const state = this.stateOf(taskId);
        state.writer = false;
        state.readers++;
        held = 'shared';
        this.pump(taskId);
      },
    };
  }

  private pump(taskId: number): void {
    const state = this.stateOf(taskId);
    for (;;) {
      const head = state.queue[0];
      if (!head || state.writer) break;
      if (head.exclusive && state.readers > 0) break;
      state.queue.shift();
      if (head.exclusive) state.writer = true;
      else state.readers++;
      head.grant();
      if (head.exclusive) break;
    }
    if (!state.writer && state.readers === 0 && state.queue.length === 0) this.states.delete(taskId);
  }

  private stateOf(taskId: number): GateState {
    let state = this.states.get(taskId);
    if (!state) {
      state = { readers: 0, writer: false, queue: [] };
      this.states.set(taskId, state);
    }
    return state;
  }
}

function abortError(): Error {
  const err = new Error('aborted');
  err.name = 'AbortError';
  return err;
}
