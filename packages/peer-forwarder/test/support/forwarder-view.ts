import type { IncomingMessage, ServerResponse } from 'node:http';
import { waitFor } from '@rps/common/testing';
import { upstreamRequestHeaders } from '../../src/services/proxy-headers.service';
import type { SeenRequest } from './harness';
import { endingOf, statusesFit } from './fast-path-model';
import type { ParsedRequest, ReferenceOutcome } from './llhttp-reference';
import { exchange, readAnswers, ReadTracker } from './wire-client';

/**
 * The end-to-end half of the differential test: the real forwarder (fast
 * path and Node's server, real sockets, a real TLS upstream) fed the same
 * bytes as llhttp, compared on what reaches the upstream and what the peer
 * gets back (docs/forwarder.md, "Differential testing against llhttp").
 */

/** One request as the upstream received it, attributed to the peer's source address. */
export interface UpstreamRecord {
  source: string;
  request: ParsedRequest;
}

/** Framing and Host are the pool's own on the upstream side: not compared. */
const POOL_HEADERS = new Set(['host', 'content-length', 'transfer-encoding']);

/** An upstream handler that records every complete request (body included) and answers 200 `ok`. */
export function recordingUpstream(records: UpstreamRecord[]) {
  return (req: IncomingMessage, res: ServerResponse, _seen: SeenRequest): void => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const forwardedFor = String(req.headers['x-forwarded-for'] ?? '').split(',');
      const rawHeaders: string[] = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        if (!POOL_HEADERS.has(req.rawHeaders[i]!.toLowerCase()))
          rawHeaders.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
      records.push({
        source: forwardedFor[forwardedFor.length - 1]!.trim(),
        request: { method: req.method ?? '', url: req.url ?? '', version: req.httpVersion, rawHeaders, body },
      });
      res.setHeader('content-length', '2');
      res.end('ok');
    });
  };
}

/** What the forwarder must do with llhttp's reading: its requests up to the first it refuses by policy. */
export function expectedOfForwarder(reference: ReferenceOutcome, source: string) {
  const upstream: ParsedRequest[] = [];
  let statuses = reference.statuses;
  let ending = endingOf(reference.error, reference.requests);
  let policyStop = false;
  for (const request of reference.requests) {
    // Policy, not parsing: only origin-form targets are relayed (bad_target 400, then close),
    // and a repeated Host, which llhttp accepts, is refused (bad_host 400, then close).
    const hosts = request.rawHeaders.filter(
      (_, i) => i % 2 === 0 && request.rawHeaders[i]!.toLowerCase() === 'host',
    );
    if (!request.url.startsWith('/') || hosts.length > 1) {
      statuses = [...statuses.slice(0, upstream.length), 400];
      ending = 'refused';
      policyStop = true;
      break;
    }
    upstream.push({
      ...request,
      // The upstream always hears HTTP/1.1 from the pool.
      version: '1.1',
      rawHeaders: upstreamRequestHeaders(request.rawHeaders, { address: source, proto: 'http' }),
    });
  }
  return { upstream, statuses, ending, policyStop };
}

/** A distinct loopback source per run, so late upstream arrivals are never blamed on another run. */
export const sourceOfRun = (run: number): string =>
  `127.${1 + (Math.floor(run / 64_000) % 250)}.${Math.floor(run / 250) % 256}.${1 + (run % 250)}`;

/**
 * Runs `stream` cut at `cuts` through the forwarder on `port` from `source`
 * and returns why it disagrees with llhttp's `reference`, or null.
 */
export async function forwarderDisagreement(
  port: number,
  tracker: ReadTracker,
  records: readonly UpstreamRecord[],
  stream: Buffer,
  cuts: readonly number[],
  reference: ReferenceOutcome,
  source: string,
): Promise<string | null> {
  const want = expectedOfForwarder(reference, source);
  const raw = await exchange(port, stream, cuts, tracker, source);
  const answers = readAnswers(
    raw,
    want.upstream.map((r) => r.method),
  );
  const check = (): string | null => {
    // Requests Node's server parsed after it had decided to close (reference.late,
    // or any after a policy refusal) may reach the upstream: listed in docs/forwarder.md.
    const late = new Set(reference.late.map((r) => JSON.stringify(r.url + r.body)));
    const got = records
      .filter((r) => r.source === source)
      .map((r) => r.request)
      .filter(
        (r, i) =>
          !(i >= want.upstream.length && (want.policyStop || late.has(JSON.stringify(r.url + r.body)))),
      );
    // After a closing request with bytes behind it, Node's server answers 400
    // in place of that request's answer (the fast path answers it) and may
    // abort relaying it once the peer is gone; the requests before it must match.
    const lenient = want.ending === 'closed-early';
    // On Node's path pipelined requests are relayed as each is read (a GET
    // behind a POST still collecting its body may arrive first): order is not
    // compared (docs/forwarder.md lists it).
    const have = sorted(got);
    const need = sorted(want.upstream);
    const upstreamOk = lenient
      ? have.every((r) => need.includes(r)) && have.length >= need.length - 1
      : have.length === need.length && have.every((r, i) => r === need[i]);
    if (!upstreamOk)
      return `upstream got ${JSON.stringify(got)}, llhttp read ${JSON.stringify(want.upstream)}`;
    const statusesOk = statusesFit(answers.statuses, want.statuses, want.upstream.length, want.ending);
    if (!statusesOk || answers.unparsed)
      return `peer got ${JSON.stringify(answers.statuses)}${answers.unparsed ? ' and unreadable bytes' : ''}, llhttp answered ${JSON.stringify(want.statuses)}`;
    return null;
  };
  // The upstream may still be receiving the last request when the peer's connection closed.
  try {
    await waitFor('the upstream to agree', () => check() === null, { timeoutMs: 1000, intervalMs: 10 });
    return null;
  } catch {
    return check();
  }
}

const sorted = (requests: readonly ParsedRequest[]): string[] =>
  requests.map((r) => JSON.stringify([r.method, r.url, r.rawHeaders, r.body])).sort();
