import { spawn } from 'node:child_process';
import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { Logger } from 'pino';
import type { RunHandle, RunIo, RunResult } from '../executor';
import { failureMessage, type KillCause } from './job-limits';
import type { JobLimits } from './job-sandbox';

/** The job file every task archive holds (IVIS `PYTHON_JOB_FILE_NAME`). */
export const JOB_FILE = 'job.py';
/** The job's request channel (ivis-protocol.md 6.2). */
const REQUEST_FD = 3;
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
  /** Told the job's pid (its process group) once it is spawned. */
  onSpawn?: (pid: number) => void;
}

/**
 * Spawns the job with stdio [pipe, pipe, pipe, pipe] and speaks the job
 * protocol: input on stdin, output on stdout, requests on fd 3 answered on
 * stdin, stderr kept (its tail) for the failure message. The job leads its
 * own session and process group (setsid), so a stop, a limit, and the end of
 * the job itself reach whatever it started: SIGINT to the group, SIGKILL
 * after the grace, and SIGKILL to what is left of the group once its leader
 * has exited (a child that ignores SIGINT does not outlive the run).
 */
export function startJobProcess(options: JobProcessOptions): RunHandle {
  const child = spawn(options.command.file, options.command.args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    detached: true,
  });
  const log = options.logger;
  const { limits } = options;
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
  let stderr = Buffer.alloc(0);
  let exited = false;
  let killedFor: KillCause | null = null;
  let killTimer: NodeJS.Timeout | undefined;
  let outputBytes = 0;
  const stdin = child.stdin;
  const pipeError = (err: Error) => log.debug({ err: err.message }, 'job pipe error');
  for (const stream of [child.stdin, child.stdout, child.stderr, child.stdio[REQUEST_FD]]) {
    (stream as Readable | Writable | null)?.on('error', pipeError);
  }

  const writeLine = (value: unknown) => {
    if (stdin.writable) stdin.write(`${JSON.stringify(value)}\n`);
  };
  writeLine(options.input);

  const signalGroup = (signal: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      // A negative pid addresses the job's process group.
      process.kill(-child.pid, signal);
    } catch {
      // The group is gone.
    }
  };
  const terminate = (cause: KillCause) => {
    if (exited || killedFor) return;
    killedFor = cause;
    if (cause !== 'stop') log.warn({ cause }, 'job hit a limit; stopping it');
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

  const decoder = new StringDecoder('utf8');
  child.stdout.on('data', (data: Buffer) => {
    if (countOutput(data.length)) options.io.onOutput(decoder.write(data));
  });
  const stdoutEnded = new Promise<void>((resolve) => child.stdout.once('close', resolve));
  child.stderr.on('data', (data: Buffer) => {
    if (!countOutput(data.length)) return;
    stderr = Buffer.concat([stderr, data]);
    if (stderr.length > options.stderrTailBytes)
      stderr = stderr.subarray(stderr.length - options.stderrTailBytes);
  });

  // Requests are answered one at a time, in order: the helper reads answers in the order it asked.
  let answers: Promise<void> = Promise.resolve();
  const requests = child.stdio[REQUEST_FD] as Readable | null;
  if (requests) {
    readline.createInterface({ input: requests, crlfDelay: Infinity }).on('line', (line) => {
      answers = answers.then(async () => {
        const answer = await options.onRequest(line).catch((err: unknown) => ({ error: String(err) }));
        writeLine(answer);
      });
    });
  }

  const done = new Promise<RunResult>((resolve) => {
    const errorLog = () => stderr.toString('utf8');
    const settle = () => {
      exited = true;
      clearTimeout(killTimer);
      clearTimeout(wallTimer);
    };
    child.once('error', (err) => {
      settle();
      resolve({ succeeded: false, errMsg: `${err.toString()}\n\nError log:\n${errorLog()}` });
    });
    child.once('exit', (code, signal) => {
      settle();
      // Whatever the job left in its group is an orphan of the run: it goes too.
      signalGroup('SIGKILL');
      void Promise.race([stdoutEnded, delay(DRAIN_AFTER_EXIT_MS)]).then(() => {
        const rest = decoder.end();
        if (rest) options.io.onOutput(rest);
        const errMsg = failureMessage({ code, signal, killedFor, stderr: errorLog() }, limits);
        resolve({ succeeded: errMsg === '', errMsg });
      });
    });
  });

  return {
    done,
    stop: () => terminate('stop'),
  };
}
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
