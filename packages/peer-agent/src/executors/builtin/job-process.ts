import readline from 'node:readline';
import { StringDecoder } from 'node:string_decoder';
import type { Logger } from 'pino';
import type { RunHandle, RunIo, RunResult } from '../executor';
import { failureMessage, type KillCause } from './job-limits';
import type { JobSpawner, LaunchedJob } from './job-launcher';
import type { JobLimits } from './job-sandbox';

/** The job file every task archive holds (IVIS `PYTHON_JOB_FILE_NAME`). */
export const JOB_FILE = 'job.py';
/** After the process exits, how long to wait for the rest of its stdout. */
const DRAIN_AFTER_EXIT_MS = 2000;

export interface JobProcessOptions {
  /** The confined launch of `python job.py` (job-sandbox.ts `jobCommand`). */
  command: { file: string; args: readonly string[] };
  /** The run's private folder. */
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Written as the first stdin line (6.2). */
  input: unknown;
  io: RunIo;
  /** Answers one fd-3 line; the answer goes back to the job as one JSON line on stdin. */
  onRequest: (line: string) => Promise<unknown>;
  stopGraceMs: number;
  stderrTailBytes: number;
  /** The kernel enforces the rest (prlimit); the agent watches wall time and output bytes. */
  limits: JobLimits;
  logger: Logger;
  /** Starts the command (the agent's launcher, job-launcher.ts). */
  spawner: JobSpawner;
  /** Told the job's pid (its process group) once it is spawned. */
  onSpawn?: (pid: number) => void;
}

/**
 * Starts the job through the spawner (its stdin, stdout, stderr and fd 3
 * end in the agent) and speaks the job protocol: input on stdin, output on stdout, requests on fd 3 answered on
 * stdin, stderr kept (its tail) for the failure message. The job leads its
 * own session and process group (setsid), so a stop, a limit, and the end of
 * the job itself reach whatever it started: SIGINT to the group, SIGKILL
 * after the grace, and SIGKILL to what is left of the group once its leader
 * has exited (a child that ignores SIGINT does not outlive the run).
 */
export function startJobProcess(options: JobProcessOptions): RunHandle {
  const log = options.logger;
  const { limits } = options;
  let pid: number | undefined;
  let stderr = Buffer.alloc(0);
  let exited = false;
  let killedFor: KillCause | null = null;
  let killTimer: NodeJS.Timeout | undefined;
  let outputBytes = 0;

  const signalGroup = (signal: NodeJS.Signals) => {
    if (pid === undefined) return;
    try {
      // A negative pid addresses the job's process group.
      process.kill(-pid, signal);
    } catch {
      // The group is gone.
    }
  };
  const terminate = (cause: KillCause) => {
    if (exited || killedFor) return;
    killedFor = cause;
    if (cause !== 'stop') log.warn({ cause }, 'job hit a limit; stopping it');
    // Before the job is handed over there is no group yet: it gets its SIGINT once it is.
    signalGroup('SIGINT');
    killTimer = setTimeout(() => signalGroup('SIGKILL'), options.stopGraceMs);
  };
  const wallTimer = limits.wallMs === null ? undefined : setTimeout(() => terminate('wall'), limits.wallMs);
  /** Counts output bytes; false once the job has written more than it may (the rest is dropped). */
  const countOutput = (bytes: number) => {
    outputBytes += bytes;
    if (limits.outputBytes === null || outputBytes <= limits.outputBytes) return true;
    terminate('output');
    return false;
  };
  const settle = () => {
    exited = true;
    clearTimeout(killTimer);
    clearTimeout(wallTimer);
  };

  const run = async (): Promise<RunResult> => {
    let job: LaunchedJob;
    try {
      job = await options.spawner.spawn(options.command, { cwd: options.cwd, env: options.env });
    } catch (err) {
      settle();
      return { succeeded: false, errMsg: `${String(err)}\n\nError log:\n` };
    }
    pid = job.pid;
    options.onSpawn?.(pid);
    if (killedFor) signalGroup('SIGINT');
    const { stdin, stdout, requests } = job;
    const pipeError = (err: Error) => log.debug({ err: err.message }, 'job pipe error');
    for (const stream of [stdin, stdout, job.stderr, requests]) stream.on('error', pipeError);
    const writeLine = (value: unknown) => {
      if (stdin.writable) stdin.write(`${JSON.stringify(value)}\n`);
    };
    writeLine(options.input);

    const decoder = new StringDecoder('utf8');
    stdout.on('data', (data: Buffer) => {
      if (countOutput(data.length)) options.io.onOutput(decoder.write(data));
    });
    const stdoutEnded = new Promise<void>((resolve) => stdout.once('close', resolve));
    job.stderr.on('data', (data: Buffer) => {
      if (!countOutput(data.length)) return;
      stderr = Buffer.concat([stderr, data]);
      if (stderr.length > options.stderrTailBytes)
        stderr = stderr.subarray(stderr.length - options.stderrTailBytes);
    });

    // Requests are answered one at a time, in order: the helper reads answers in the order it asked.
    let answers: Promise<void> = Promise.resolve();
    readline.createInterface({ input: requests, crlfDelay: Infinity }).on('line', (line) => {
      answers = answers.then(async () => {
        const answer = await options.onRequest(line).catch((err: unknown) => ({ error: String(err) }));
        writeLine(answer);
      });
    });

    const { code, signal } = await job.exited;
    settle();
    // Whatever the job left in its group is an orphan of the run: it goes too.
    signalGroup('SIGKILL');
    await Promise.race([stdoutEnded, delay(DRAIN_AFTER_EXIT_MS)]);
    const rest = decoder.end();
    if (rest) options.io.onOutput(rest);
    for (const stream of [stdin, stdout, job.stderr, requests]) stream.destroy();
    const errMsg = failureMessage({ code, signal, killedFor, stderr: stderr.toString('utf8') }, limits);
    return { succeeded: errMsg === '', errMsg };
  };

  return {
    done: run(),
    stop: () => terminate('stop'),
  };
}
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
