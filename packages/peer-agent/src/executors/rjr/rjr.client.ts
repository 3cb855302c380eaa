import { runStatusResponseSchema, type RunStatusResponse } from '@rps/common';

/** One answer of the job runner, as far as the agent can read it. */
export type RunnerStatus =
  { kind: 'status'; status: RunStatusResponse } | { kind: 'missing' } | { kind: 'unusable'; problem: string };

interface HttpAnswer {
  status: number;
  text: string;
}

/**
 * Plain HTTP to an IVIS job runner (ivis-protocol.md 1.6). Every request has
 * a deadline, so a hanging runner fails a call instead of holding a slot.
 */
export class RjrClient {
  private readonly base: string;

  constructor(
    url: string,
    private readonly timeoutMs: number,
  ) {
    this.base = url.replace(/\/+$/, '');
  }

  /** Status of the HTTP answer to `POST /run/:id`; throws when the runner is unreachable. */
  async post(runId: number, body: Buffer): Promise<number> {
    return (await this.request('POST', `/run/${runId}`, body)).status;
  }

  async status(runId: number): Promise<RunnerStatus> {
    let answer: HttpAnswer;
    try {
      answer = await this.request('GET', `/run/${runId}`);
    } catch (err) {
      return { kind: 'unusable', problem: `job runner unreachable: ${String(err)}` };
    }
    if (answer.status === 404) return { kind: 'missing' };
    if (answer.status !== 200) {
      return { kind: 'unusable', problem: `job runner answered HTTP ${answer.status} to GET /run/${runId}` };
    }
    const parsed = runStatusResponseSchema.safeParse(safeJson(answer.text));
    if (parsed.success) return { kind: 'status', status: parsed.data };
    const issue = describeIssue(parsed.error.issues[0]);
    return {
      kind: 'unusable',
      problem: `job runner status not understood: ${issue} in ${answer.text.slice(0, 200)}`,
    };
  }

  /** `POST /run/:id/stop`: the HTTP status (404 while the runner has no row). */
  async stop(runId: number): Promise<number> {
    return (await this.request('POST', `/run/${runId}/stop`, Buffer.from('{}'))).status;
  }

  /** `DELETE /run/:id`; a 404 (no such row) is as good as a 200. */
  async deleteRun(runId: number): Promise<void> {
    const { status } = await this.request('DELETE', `/run/${runId}`);
    if (status === 200 || status === 404) return;
    throw new Error(`job runner answered HTTP ${status} to DELETE /run/${runId}`);
  }

  async deleteTask(taskId: number): Promise<void> {
    const { status } = await this.request('DELETE', `/task/${taskId}`);
    if (status >= 300) throw new Error(`job runner answered ${status} to task delete`);
  }

  private async request(method: string, path: string, body?: Buffer): Promise<HttpAnswer> {
    const res = await fetch(this.base + path, {
      method,
      headers: body ? { 'content-type': 'application/json' } : undefined,
      body,
      signal: AbortSignal.timeout(this.timeoutMs),
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
