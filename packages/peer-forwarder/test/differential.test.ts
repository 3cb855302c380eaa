import { createTestPki, startRedisServer, type TestRedisServer } from '@rps/common/testing';
import { CORPUS, END_OF_STREAM } from './support/request-corpus';
import { disagreement, endingOf, statusesFit, systemViews } from './support/fast-path-model';
import {
  forwarderDisagreement,
  recordingUpstream,
  sourceOfRun,
  type UpstreamRecord,
} from './support/forwarder-view';
import { startForwarder, startTlsUpstream, type TestForwarder, type TlsUpstream } from './support/harness';
import { LlhttpReference, type ReferenceOutcome } from './support/llhttp-reference';
import { ReadTracker } from './support/wire-client';

/**
 * The differential test of the forwarder's request parsing against llhttp
 * (docs/forwarder.md, "Differential testing against llhttp"). Each corpus
 * stream, followed by a closing request, is read by llhttp (a plain Node
 * HTTP server) and
 *  1. by the fast path's decision function at every cut point, with Node's
 *     server taking over at the first hand-off: the same requests (method,
 *     target, headers, body) and the same ending;
 *  2. by the real forwarder in front of a real TLS upstream, whole and cut:
 *     the upstream gets exactly llhttp's requests (after header hygiene) and
 *     the peer the same statuses.
 * `DIFF_ALL_CUTS=1` cuts every stream at every offset in both parts (slow).
 */
const ALL_CUTS = process.env.DIFF_ALL_CUTS === '1';
// Every offset of every stream through real sockets takes many minutes.
if (ALL_CUTS) jest.setTimeout(3_600_000);
/** Streams up to this size are cut at every offset in part 1 even in CI. */
const EVERY_CUT_BYTES = 2048;

const wire = (text: string) => Buffer.from(text + END_OF_STREAM, 'latin1');
const range = (from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

/** Cut points for part 1: every offset, or for a large stream its first and last 64 and every 997th. */
function modelCuts(stream: Buffer): number[] {
  if (ALL_CUTS || stream.length <= EVERY_CUT_BYTES) return range(1, stream.length);
  const cuts = new Set([...range(1, 65), ...range(stream.length - 64, stream.length)]);
  for (let at = 997; at < stream.length; at += 997) cuts.add(at);
  return [...cuts].sort((a, b) => a - b);
}

/** Cut points for part 2: a few that change which path reads what. */
function forwarderCuts(stream: Buffer): number[][] {
  if (ALL_CUTS) return range(1, stream.length).map((at) => [at]);
  return sampleCuts(stream).map((at) => [at]);
}

/** Two cuts that matter most: inside the first head (Node's server reads it) and right after it (body in a later read). */
function sampleCuts(stream: Buffer): number[] {
  const headEnd = stream.indexOf('\r\n\r\n');
  const points = new Set([headEnd >> 1, headEnd + 4]);
  return [...points].filter((at) => at > 0 && at < stream.length);
}

describe('differential: the forwarder against llhttp', () => {
  let reference: LlhttpReference;
  const cache = new Map<string, Promise<ReferenceOutcome>>();
  const llhttp = (stream: Buffer) => {
    const key = stream.toString('latin1');
    let outcome = cache.get(key);
    if (!outcome) cache.set(key, (outcome = reference.run(stream)));
    return outcome;
  };

  beforeAll(async () => {
    reference = await LlhttpReference.start();
  });
  afterAll(async () => {
    await reference.close();
  });

  it('when the corpus names are listed then each is unique', () => {
    expect(new Set(CORPUS.map((e) => e.name)).size).toBe(CORPUS.length);
  });

  it('when llhttp reads a stream cut at any offset then it reads it as it reads it whole', async () => {
    const problems: string[] = [];
    for (const entry of CORPUS) {
      const stream = wire(entry.bytes);
      const whole = await llhttp(stream);
      // Each cut is a connection: every offset only with DIFF_ALL_CUTS.
      for (const at of ALL_CUTS ? range(1, stream.length) : sampleCuts(stream)) {
        const cut = await reference.run(stream, [at]);
        const same =
          endingOf(cut.error, cut.requests) === endingOf(whole.error, whole.requests) &&
          JSON.stringify(cut.requests) === JSON.stringify(whole.requests) &&
          statusesFit(
            cut.statuses,
            whole.statuses,
            whole.requests.length,
            endingOf(whole.error, whole.requests),
          );
        if (!same)
          problems.push(`${entry.name} cut at ${at}: ${JSON.stringify(cut)} vs ${JSON.stringify(whole)}`);
      }
    }
    expect(problems.slice(0, 40)).toEqual([]);
  });

  it('when the fast path reads a corpus stream cut at every offset then the forwarder reads what llhttp reads', async () => {
    const problems: string[] = [];
    for (const entry of CORPUS) {
      const stream = wire(entry.bytes);
      const whole = await llhttp(stream);
      for (const cuts of [[], ...modelCuts(stream).map((at) => [at])]) {
        for (const view of await systemViews(stream, cuts, llhttp)) {
          const why = disagreement(whole, view);
          if (why) problems.push(`${entry.name} (cut at ${cuts.join(',') || 'none'}): ${why}`);
        }
      }
    }
    expect(problems.slice(0, 40)).toEqual([]);
  });

  describe('through the real forwarder', () => {
    const pki = createTestPki();
    const records: UpstreamRecord[] = [];
    const tracker = new ReadTracker();
    let redisServer: TestRedisServer;
    let upstream: TlsUpstream;
    let fwd: TestForwarder;
    let runs = 0;

    beforeAll(async () => {
      redisServer = await startRedisServer();
      upstream = await startTlsUpstream(pki, recordingUpstream(records));
      // The forwarder adds X-Forwarded-* to a head llhttp accepted at its limit:
      // the upstream's own head limit is not under test.
      (upstream.server as unknown as { maxHeaderSize: number }).maxHeaderSize = 64 * 1024;
      fwd = await startForwarder({
        pki,
        redisUrl: redisServer.url,
        routes: { trusted: upstream.url },
        allow: ['127.0.0.0/8'],
      });
      fwd.service.routes[0]!.server.on('connection', tracker.onConnection);
    });
    afterAll(async () => {
      await fwd.close();
      await upstream.close();
      await redisServer.stop();
      pki.cleanup();
    });

    it('when a corpus stream is sent whole or cut then the upstream gets what llhttp read and the peer the same answers', async () => {
      const problems: string[] = [];
      for (const entry of CORPUS) {
        const stream = wire(entry.bytes);
        const whole = await llhttp(stream);
        for (const cuts of [[], ...forwarderCuts(stream)]) {
          const source = sourceOfRun(runs++);
          const why = await forwarderDisagreement(
            fwd.ports.trusted!,
            tracker,
            records,
            stream,
            cuts,
            whole,
            source,
          );
          if (why) problems.push(`${entry.name} (cut at ${cuts.join(',') || 'none'}): ${why}`);
        }
      }
      expect(problems.slice(0, 40)).toEqual([]);
    }, 300_000);
  });
});
