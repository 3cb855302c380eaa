import http from 'node:http';
import https from 'node:https';
import { isRetryablePushStatus, type EmitPush, type RunRequestPush, type StatusPush } from '@rps/common';
import type { Logger } from 'pino';

/**
 * How long an idle connection to the forwarder is kept for the next push
 * when the server announces no `Keep-Alive: timeout` (a server that does
 * is believed, less a second: Node's agent). Below Node servers' default 5 s.
 */
export const PUSH_IDLE_KEEP_MS = 4000;

/** The IVIS-core push endpoints (ivis-protocol.md 2.3-2.5), under `trustedUrlBase`. */
export const PUSH_PATHS = {
  status: '/rest/remote/status',
  emit: '/rest/remote/emit',
  runRequest: '/rest/remote/runRequest',
} as const;

/** A push that did not get a 2xx answer. */
export class PushError extends Error {
  constructor(
    message: string,
    /** The HTTP status, null for a network error or timeout. */
    readonly status: number | null,
    /** Whether another attempt could succeed (network error, 5xx, 408, 429). */
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'PushError';
  }
}

export interface PushClientOptions {
  trustedUrlBase: string;
  attempts: number;
  backoffMs: number;
  maxBackoffMs: number;
  timeoutMs: number;
  logger: Logger;
  /** Called once per push that finally failed, for metrics. */
  onFailure?: (kind: keyof typeof PUSH_PATHS) => void;
}

/** Whether an HTTP status is worth retrying: IVIS-core's 4xx answers are final, except timeouts and rate limits. */
export function isRetryableStatus(status: number): boolean {
  return isRetryablePushStatus(status);
}

/**
 * Posts to IVIS-core (through the forwarder's trusted route) with bounded
 * retries. Unlike the RJR, a 4xx is never retried: IVIS-core appends output
 * on every accepted status push, and a 400 will not turn into a 200.
 */
export class IvisPushClient {
  private closed = false;
  /**
   * Pushes go over node:http with keep-alive, not fetch: a push through
   * undici's fetch cost 1.2-1.4 ms of CPU against 0.4-0.6 ms
   * (docs/peer-agent.md), and a run makes several.
   */
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;
  private readonly base: string;

  constructor(private readonly options: PushClientOptions) {
    // Concatenated, not resolved: a base with a path prefix keeps it, as in the RJR.
    this.base = options.trustedUrlBase.replace(/\/+$/, '');
    const agentOptions = { keepAlive: true, timeout: PUSH_IDLE_KEEP_MS };
    const secure = this.base.startsWith('https:');
    this.agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.request = secure ? https.request : http.request;
  }

  status(body: StatusPush, attempts?: number, signal?: AbortSignal): Promise<unknown> {
    return this.post('status', body, attempts, signal);
  }

  emit(body: EmitPush, attempts?: number, signal?: AbortSignal): Promise<unknown> {
    return this.post('emit', body, attempts, signal);
  }

  /**
   * A job's request (2.5), tried once (a create_signals must not be repeated):
   * IVIS-core's JSON answer whatever its status, as the RJR relays it, or
   * `{error}` when there is no JSON answer.
   */
  async runRequest(body: RunRequestPush): Promise<Record<string, unknown>> {
    try {
      const res = await this.fetchOnce(PUSH_PATHS.runRequest, body);
      const answer = parseJson(res.text);
      if (isPlainObject(answer)) return answer;
      return res.ok ? {} : { error: `IVIS-core answered ${res.status}` };
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err) };
    }
  }

  /** Stops retrying (shutdown); attempts in flight finish, idle connections close. */
  close(): void {
    this.closed = true;
    for (const sockets of Object.values(this.agent.freeSockets))
      for (const socket of sockets ?? []) socket.destroy();
  }

  /** `signal` abandons the push (its retries too): a run's final pushes must not wait behind it for ever. */
  private async post(
    kind: keyof typeof PUSH_PATHS,
    body: unknown,
    attempts = this.options.attempts,
    signal?: AbortSignal,
  ) {
    // Made only if needed: an Error's stack trace costs a few µs, and nearly every push succeeds at once.
    let last: PushError | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) {
        if (this.closed || signal?.aborted) break;
        await sleep(Math.min(this.options.backoffMs * 2 ** (attempt - 2), this.options.maxBackoffMs), signal);
        if (signal?.aborted) break;
      }
      try {
        const res = await this.fetchOnce(PUSH_PATHS[kind], body, signal);
        if (res.ok) return parseJson(res.text);
        last = new PushError(
          `IVIS-core answered ${res.status} to ${kind}`,
          res.status,
          isRetryableStatus(res.status),
        );
      } catch (err) {
        last = new PushError(err instanceof Error ? err.message : String(err), null, true);
      }
      if (!last.retryable) break;
      this.options.logger.debug({ kind, attempt, err: last.message }, 'push attempt failed');
    }
    this.options.onFailure?.(kind);
    throw last ?? new PushError('no attempt made', null, true);
  }

  private fetchOnce(
    path: string,
    body: unknown,
    signal?: AbortSignal,
  ): Promise<{ ok: boolean; status: number; text: string }> {
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = this.request(
        this.base + path,
        {
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
          // Bounds the whole exchange, the answer's body included.
          signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
        },
        (res) => {
          const parts: string[] = [];
          res.setEncoding('utf8');
          res.on('data', (part: string) => parts.push(part));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            resolve({ ok: status >= 200 && status < 300, status, text: parts.join('') });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
