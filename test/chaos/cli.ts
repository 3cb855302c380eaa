/**
 * The chaos test by hand, at any size (docs/reliability.md):
 *
 *   npm run test:chaos -- --runs 300 --rate 10 --agents 3 --kills 2 --seed 7
 *
 * Prints progress, then the report table; exits 1 if a guarantee broke.
 */
import { DEFAULT_OPTIONS, formatReport, hasProblems, runChaos, type ChaosOptions } from './chaos';

const NUMERIC = [
  'runs',
  'rate',
  'agents',
  'capacity',
  'kills',
  'seed',
  'jobMs',
  'heartbeatTimeoutMs',
  'tailRuns',
  'settleMs',
] as const;

function parseArgs(argv: string[]): Partial<ChaosOptions> {
  const options: Partial<Record<(typeof NUMERIC)[number], number>> = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] ?? '';
    const name = flag.replace(/^--/, '') as (typeof NUMERIC)[number];
    if (flag === '--help' || !NUMERIC.includes(name)) {
      console.error(
        `usage: cli.js ${NUMERIC.map((n) => `[--${n} N]`).join(' ')}\ndefaults: ${JSON.stringify({ ...DEFAULT_OPTIONS, progress: undefined })}`,
      );
      process.exit(flag === '--help' ? 0 : 2);
    }
    const value = Number(argv[++i]);
    if (!Number.isFinite(value) || value < 0) {
      console.error(`${flag} needs a non-negative number`);
      process.exit(2);
    }
    options[name] = value;
  }
  return options;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const report = await runChaos({
    ...options,
    progress: (line) => console.error(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}`),
  });
  console.log(formatReport(report));
  process.exitCode = hasProblems(report) ? 1 : 0;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(2);
});
