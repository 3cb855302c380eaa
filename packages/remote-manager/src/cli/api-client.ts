/** Exit codes of `rps` (docs/remote-manager.md, "CLI"); scripts rely on them. */
export const EXIT = {
  ok: 0,
  /** The manager answered an error (4xx other than 401/403, or 5xx). */
  apiError: 1,
  /** Bad command line (unknown command, missing argument). */
  usage: 2,
  /** The manager cannot be reached, or refused the token (401/403). */
  unreachable: 3,
} as const;

/** A failure with the exit code it ends the CLI with. */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

interface ErrorBody {
  error?: unknown;
  code?: unknown;
  details?: Array<{ path?: unknown; message?: unknown }>;
}

function describeError(status: number, body: unknown): string {
  const e = (typeof body === 'object' && body !== null ? body : {}) as ErrorBody;
  const code = typeof e.code === 'string' ? e.code : `http_${status}`;
  const message = typeof e.error === 'string' ? e.error : 'request failed';
  const details = (e.details ?? []).map((d) => `${String(d.path)}: ${String(d.message)}`).join('; ');
  return `${code} (${status}): ${message}${details ? ` [${details}]` : ''}`;
}

/** The manager's API as the CLI uses it: JSON in and out, errors as {@link CliError}. */
export class ApiClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
    private readonly timeoutMs = 30_000,
  ) {}

  async request<T = unknown>(method: string, route: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(new URL(route, this.baseUrl), {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const reason = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
      throw new CliError(EXIT.unreachable, `cannot reach the manager at ${this.baseUrl}: ${reason}`);
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      // not JSON: reported as it is below
    }
    if (res.ok) return parsed as T;
    const code = res.status === 401 || res.status === 403 ? EXIT.unreachable : EXIT.apiError;
    throw new CliError(code, describeError(res.status, parsed));
  }
}
