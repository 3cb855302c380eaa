import { RemoteRunState, runStatusResponseSchema } from '@rps/common';
import type { Logger } from 'pino';
import {
  type Executor,
  type ExecutorRun,
  type PreparedRun,
  type RunHandle,
  type RunIo,
  type RunResult,
} from '../executor';

export interface RjrExecutorOptions {
  /** The job runner's base URL (`agent.executor.url`). */
  url: string;
  pollMs: number;
  unreachableMs: number;
  timeoutMs: number;
  logger: Logger;
}

interface HttpAnswer {
  status: number;
  text: string;
}

/**
 * Hands runs to an existing IVIS job runner on this peer (ivis-protocol.md
 * 1.6): the body goes unchanged to `POST /run/:id`, progress comes from
 * polling `GET /run/:id`. The runner builds, runs and pushes to IVIS-core by
 * itself, so the agent only mirrors state and output into Redis.
 */
export class RjrExecutor implements Executor {
  readonly kind = 'rjr' as const;
  readonly agentPushes = false;
  private readonly base: string;

  constructor(private readonly options: RjrExecutorOptions) {
    this.base = options.url.replace(/\/+$/, '');
  }

  async prepare(run: ExecutorRun): Promise<PreparedRun> {
    // The runner builds after POST /run, which also starts the run: nothing to do before `start`.
    return { start: (io) => this.start(run, io), release: () => undefined };
  }

  async deleteTask(taskId: number): Promise<void> {
    const res = await this.request('DELETE', `/task/${taskId}`);
    if (res.status >= 300) throw new Error(`job runner answered ${res.status} to task delete`);
  }

  async abandon(runId: number): Promise<void> {
    await this.request('POST', `/run/${runId}/stop`).catch(() => undefined);
  }

  private start(run: ExecutorRun, io: RunIo): RunHandle {
    let stopRequested = false;
    const done = this.follow(run, io).finally(() => {
      // The runner keeps its row until deleted (IVIS-core's own DELETE goes to the gateway, not here).
      this.request('DELETE', `/run/${run.runId}`).catch(() => undefined);
    });
    return {
      done,
      stop: () => {
        if (stopRequested) return;
        stopRequested = true;
        this.request('POST', `/run/${run.runId}/stop`, Buffer.from('{}')).catch((err: unknown) =>
          this.options.logger.warn({ runId: run.runId, err: String(err) }, 'job runner stop failed'),
        );
      },
    };
  }

  private async follow(run: ExecutorRun, io: RunIo): Promise<RunResult> {
    try {
      const posted = await this.request('POST', `/run/${run.runId}`, run.raw);
      if (posted.status >= 300) {
        return {
          succeeded: false,
          errMsg: `job runner refused the run (HTTP ${posted.status})`,
          needsFinalPush: true,
        };
      }
    } catch (err) {
      return { succeeded: false, errMsg: `job runner unreachable: ${String(err)}`, needsFinalPush: true };
    }
    let seen = 0;
    // The last answer the agent could use; a runner that stays unreachable or
    // keeps answering what the agent cannot read fails the run after
    // `unreachableMs` instead of being polled forever.
    let lastUsable = Date.now();
    let warned = false;
    for (;;) {
      await sleep(this.options.pollMs);
      let problem: string;
      try {
        const answer = await this.request('GET', `/run/${run.runId}`);
        if (answer.status === 404) {
          return {
            succeeded: false,
            errMsg: 'the run disappeared from the job runner',
            needsFinalPush: true,
          };
        }
        const parsed =
          answer.status === 200 ? runStatusResponseSchema.safeParse(safeJson(answer.text)) : null;
        if (parsed?.success) {
          lastUsable = Date.now();
          const status = parsed.data;
          if (status.output.length > seen) {
            io.onOutput(status.output.slice(seen));
            seen = status.output.length;
          }
          if (status.status === RemoteRunState.SUCCESS) return { succeeded: true, errMsg: '' };
          if (status.status === RemoteRunState.RUN_FAIL) {
            // A build failure is the one end the runner never pushes: it leaves no finished_at (3.3).
            return {
              succeeded: false,
              errMsg: status.error,
              needsFinalPush: status.finished_at === undefined,
            };
          }
          continue;
        }
        problem =
          answer.status === 200
            ? `job runner status not understood: ${describeIssue(parsed?.error.issues[0])} in ${answer.text.slice(0, 200)}`
            : `job runner answered HTTP ${answer.status} to GET /run/${run.runId}`;
      } catch (err) {
        problem = `job runner unreachable: ${String(err)}`;
      }
      if (!warned) {
        warned = true;
        this.options.logger.warn({ runId: run.runId, problem }, 'job runner status unusable, retrying');
      }
      if (Date.now() - lastUsable >= this.options.unreachableMs) {
        return {
          succeeded: false,
          errMsg: `${problem} (for ${this.options.unreachableMs} ms)`,
          needsFinalPush: true,
        };
      }
    }
  }

  private async request(method: string, path: string, body?: Buffer): Promise<HttpAnswer> {
    const res = await fetch(this.base + path, {
      method,
      headers: body ? { 'content-type': 'application/json' } : undefined,
      body,
      signal: AbortSignal.timeout(this.options.timeoutMs),
    });
    return { status: res.status, text: await res.text() };
  }
}

function describeIssue(issue: { path: PropertyKey[]; message: string } | undefined): string {
  if (!issue) return 'not JSON';
  return `${issue.path.map(String).join('.') || '(body)'}: ${issue.message}`;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
