import { isRetryablePushStatus, type SinglePush } from '@rps/common';
import { request, type Dispatcher } from 'undici';

/** IVIS-core's push routes (ivis-protocol.md 2.3, 2.4), under the trusted URL base. */
const PUSH_PATHS: Record<SinglePush['kind'], string> = {
  status: '/rest/remote/status',
  emit: '/rest/remote/emit',
};

/** A push IVIS-core (or the forwarder in front of it) did not accept; thrown so BullMQ retries unless {@link isFinalPushError}. */
export class PushRejectedError extends Error {
  constructor(
    readonly statusCode: number,
    url: string,
  ) {
    super(`push to ${url} answered HTTP ${statusCode}`);
    this.name = 'PushRejectedError';
  }
}

/**
 * Delivers one RPS-originated push to IVIS-core through the forwarder's
 * trusted route, which adds the pool's client certificate. Any non-2xx
 * counts as a failure (ivis-protocol.md 2.6); the caller retries it, except
 * IVIS-core's final answers (4xx but 408 and 429), as the agents do.
 */
export class PushDelivery {
  private readonly base: string;

  constructor(private readonly deps: { trustedUrlBase: string; dispatcher: Dispatcher; timeoutMs: number }) {
    this.base = deps.trustedUrlBase.replace(/\/+$/, '');
  }

  async deliver(push: SinglePush): Promise<void> {
    const url = `${this.base}${PUSH_PATHS[push.kind]}`;
    const res = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(push.body),
      dispatcher: this.deps.dispatcher,
      signal: AbortSignal.timeout(this.deps.timeoutMs),
    });
    await res.body.dump();
    if (res.statusCode < 200 || res.statusCode >= 300) throw new PushRejectedError(res.statusCode, url);
  }
}

/** Whether an error is IVIS-core's final answer: retrying a 4xx (but 408, 429) cannot help. */
export function isFinalPushError(err: unknown): boolean {
  return err instanceof PushRejectedError && !isRetryablePushStatus(err.statusCode);
}
