import { FAST_LIMITS } from '../../src/routes/fast-path.handler';
import { readFastRequest } from '../../src/services/fast-request.parser';
import type { ParsedRequest, ReferenceOutcome } from './llhttp-reference';
import { END_URL } from './request-corpus';

/**
 * What the forwarder as a whole makes of a connection's bytes, derived from
 * the fast path's own decision function (`readFastRequest`, exactly what
 * `fast-path.handler.ts` runs) and llhttp: the fast path serves requests
 * while it can, and at its first refusal the connection, with every unread
 * byte, goes to Node's server, which is llhttp on the rest of the stream.
 *
 * Where the bytes arrive in several reads, the fast path decides on what it
 * has when it looks: at the first read for the first request, and for a
 * later request at any read boundary after the previous request's end
 * (which one depends on when the upstream answered). Every choice is
 * explored; each must agree with llhttp on the whole stream.
 */

/** How a connection ended. */
export type Ending =
  /** Every request was read, up to the closing request at the end. */
  | 'clean'
  /** llhttp refused bytes (400), or the fast path would have served a request cut short. */
  | 'refused'
  /**
   * A request before the end closed the connection; llhttp says
   * HPE_CLOSED_CONNECTION if the bytes behind it arrived before it closed.
   */
  | 'closed-early';

/** How a connection read by llhttp ended: from its error and the requests it read. */
export const endingOf = (error: string | null, requests: readonly ParsedRequest[]): Ending => {
  if (error !== null && error !== 'HPE_CLOSED_CONNECTION') return 'refused';
  return error === null && requests[requests.length - 1]?.url === END_URL ? 'clean' : 'closed-early';
};

/** One way the forwarder can read the stream. */
export interface SystemView {
  requests: ParsedRequest[];
  ending: Ending;
  /** Which path read what, for failure messages. */
  route: string;
}

type Plan = { served: ParsedRequest[]; handoffAt?: number; closedAt?: number; cutAt?: number };

/** Every distinct plan of the fast path over `stream` read in pieces ending at `boundaries` (ascending, last = length). */
function plans(stream: Buffer, boundaries: readonly number[]): Plan[] {
  const out: Plan[] = [];
  const explore = (at: number, served: ParsedRequest[], first: boolean) => {
    const seen = new Set<string>();
    for (const boundary of boundaries) {
      if (boundary <= at) continue;
      const request = readFastRequest(stream.subarray(at, boundary), FAST_LIMITS);
      const key =
        request.kind === 'handoff'
          ? 'handoff'
          : `${request.headBytes}+${request.bodyLength}:${request.close}`;
      if (!seen.has(key)) {
        seen.add(key);
        if (request.kind === 'handoff') out.push({ served, handoffAt: at });
        else {
          const end = at + request.headBytes + request.bodyLength;
          if (end > stream.length) out.push({ served, cutAt: at });
          else {
            const { head } = request;
            const next = [
              ...served,
              {
                method: head.method,
                url: head.target,
                version: `1.${head.minor}`,
                rawHeaders: head.rawHeaders,
                body: stream.toString('latin1', at + request.headBytes, end),
              },
            ];
            if (request.close || end === stream.length) out.push({ served: next, closedAt: end });
            else explore(end, next, false);
          }
        }
      }
      // The first request is decided on the first read alone.
      if (first) break;
    }
  };
  explore(0, [], true);
  return out;
}

/** The forwarder's possible readings of `stream` cut at `cuts`; `reference` runs llhttp on a suffix. */
export async function systemViews(
  stream: Buffer,
  cuts: readonly number[],
  reference: (suffix: Buffer) => Promise<ReferenceOutcome>,
): Promise<SystemView[]> {
  const views: SystemView[] = [];
  for (const plan of plans(stream, [...cuts, stream.length])) {
    const fast = `fast path served ${plan.served.length}`;
    if (plan.handoffAt !== undefined) {
      const node = await reference(stream.subarray(plan.handoffAt));
      views.push({
        requests: [...plan.served, ...node.requests],
        ending: endingOf(node.error, node.requests),
        route: `${fast}, then Node's server from byte ${plan.handoffAt} (${node.error ?? 'no error'})`,
      });
    } else if (plan.cutAt !== undefined) {
      views.push({
        requests: plan.served,
        ending: 'refused',
        route: `${fast}, then one cut short at ${plan.cutAt}`,
      });
    } else {
      const closedAt = plan.closedAt!;
      views.push({
        requests: plan.served,
        ending: closedAt === stream.length ? 'clean' : 'closed-early',
        route: `${fast}, then closed at byte ${closedAt}`,
      });
    }
  }
  return views;
}

/**
 * Whether the statuses a peer got fit llhttp's reading (`want`, for
 * `accepted` requests read). When Node's server refuses bytes (or closes
 * early) it writes its 400 at once, and answers to earlier pipelined requests
 * not written yet are lost (with llhttp alone too, depending on how the bytes
 * were cut): so outside a clean ending any run of 200s, at most one per
 * request read, then a 400 or nothing, fits.
 */
export function statusesFit(
  got: readonly number[],
  want: readonly number[],
  accepted: number,
  ending: Ending,
): boolean {
  if (ending === 'clean') return got.length === want.length && got.every((s, i) => s === want[i]);
  const head = got[got.length - 1] === 400 ? got.slice(0, -1) : got;
  return head.length <= accepted && head.every((s) => s === 200);
}

/** Why a view disagrees with llhttp's reading of the whole stream, or null when it agrees. */
export function disagreement(reference: ReferenceOutcome, view: SystemView): string | null {
  const ending = endingOf(reference.error, reference.requests);
  if (view.ending !== ending)
    return `ending: llhttp ${ending} (${reference.error ?? 'no error'}), forwarder ${view.ending} via ${view.route}`;
  const count = Math.max(reference.requests.length, view.requests.length);
  for (let i = 0; i < count; i++) {
    const want = reference.requests[i];
    const got = view.requests[i];
    if (JSON.stringify(want) !== JSON.stringify(got))
      return `request ${i}: llhttp ${JSON.stringify(want)}, forwarder ${JSON.stringify(got)} via ${view.route}`;
  }
  return null;
}
