/**
 * What checking a run body costs the gateway's thread (`npm run
 * bench:gateway:validator [-- --rounds N]`). Not part of the test suite.
 *
 * The one-pass validator (packages/rps-gateway/dist/services/run-body.validator.js)
 * over run.ts's bodies: the 10 MB one (a ~2.7 MiB tar) and the ~21 kB small
 * one, whole and in 16 KiB chunks (as TLS hands them over), and a 10 MB
 * one of random bytes, with the archive's
 * bytes read by the WebAssembly SIMD lane and by the JavaScript lane alone,
 * in interleaved rounds in one process, so the two lanes meet the same
 * machine. Prints the median ms per body of each, and their ratio.
 */
import crypto from 'node:crypto';
import { bytesLaneKind, useSimdBytesLane } from '@rps/rps-gateway/dist/services/bytes-lane';
import { RunBodyValidator } from '@rps/rps-gateway/dist/services/run-body.validator';
import { runBody, taskTar } from './run';

function parseArgs(argv: string[]): { rounds: number } {
  const args = { rounds: 15 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    if (argv[i] === '--rounds' && value > 0) args.rounds = value;
    else throw new Error(`unknown or bad argument: ${argv[i]} (use --rounds N)`);
  }
  return args;
}

/** ms to validate `chunks` `times` times, per body; throws unless the validator vouches for it. */
function timeValidate(chunks: Buffer[], times: number): number {
  const started = process.hrtime.bigint();
  for (let t = 0; t < times; t++) {
    const validator = new RunBodyValidator();
    for (const chunk of chunks) validator.write(chunk);
    if (validator.result() === null) throw new Error('the validator did not vouch for the bench body');
  }
  return Number(process.hrtime.bigint() - started) / 1e6 / times;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function main(): void {
  const { rounds } = parseArgs(process.argv.slice(2));
  if (bytesLaneKind().kind !== 'wasm-simd')
    throw new Error(`no SIMD lane here: ${JSON.stringify(bytesLaneKind())}`);
  const split = (body: Buffer, size: number) =>
    Array.from({ length: Math.ceil(body.length / size) }, (_, i) => body.subarray(i * size, (i + 1) * size));
  const big = runBody(taskTar(2_700_000, true));
  const small = runBody(taskTar(0, false));
  // run.ts's archive is a fixed pattern; a compressed archive's bytes are
  // random, which costs the JavaScript lane's branch prediction.
  const random = runBody(crypto.randomBytes(2_700_000));
  const cases = [
    { body: 'big', bytes: big.length, chunking: 'whole', chunks: [big], times: 1 },
    { body: 'big', bytes: big.length, chunking: '16 KiB', chunks: split(big, 16384), times: 1 },
    {
      body: 'big, random bytes',
      bytes: random.length,
      chunking: '16 KiB',
      chunks: split(random, 16384),
      times: 1,
    },
    { body: 'small', bytes: small.length, chunking: 'whole', chunks: [small], times: 200 },
    { body: 'small', bytes: small.length, chunking: '16 KiB', chunks: split(small, 16384), times: 200 },
  ];
  console.log(JSON.stringify({ scenario: 'validator', rounds, node: process.version }));
  for (const c of cases) {
    const simd: number[] = [];
    const js: number[] = [];
    for (let r = 0; r < rounds; r++) {
      useSimdBytesLane(true);
      simd.push(timeValidate(c.chunks, c.times));
      useSimdBytesLane(false);
      js.push(timeValidate(c.chunks, c.times));
    }
    useSimdBytesLane(true);
    const round = (ms: number) => Number(ms.toFixed(ms < 1 ? 4 : 2));
    console.log(
      JSON.stringify({
        body: c.body,
        bytes: c.bytes,
        chunking: c.chunking,
        simdMs: round(median(simd)),
        javascriptMs: round(median(js)),
        javascriptOverSimd: Number((median(js) / median(simd)).toFixed(1)),
      }),
    );
  }
}

main();
