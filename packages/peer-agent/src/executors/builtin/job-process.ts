import { spawn } from 'node:child_process';
import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { Logger } from 'pino';
import type { RunHandle, RunIo, RunResult } from '../executor';

/** The job file every task archive holds (IVIS `PYTHON_JOB_FILE_NAME`). */
export const JOB_FILE = 'job.py';
/** The job's request channel (ivis-protocol.md 6.2). */
const REQUEST_FD = 3;
/** After the process exits, how long to wait for the rest of its stdout. */
const DRAIN_AFTER_EXIT_MS = 2000;

export interface JobProcessOptions {
  python: string;
  cwd: string;
  /** Written as the first stdin line (6.2). */
  input: unknown;
  io: RunIo;
  /** Answers one fd-3 line; the answer goes back to the job as one JSON line on stdin. */
  onRequest: (line: string) => Promise<unknown>;
  stopGraceMs: number;
  stderrTailBytes: number;
  logger: Logger;
  /** Told the job's pid (its process group) once it is spawned. */
  onSpawn?: (pid: number) => void;
}

/**
 * Spawns `<venv>/bin/python job.py` with stdio [pipe, pipe, pipe, pipe] and
 * speaks the job protocol: input on stdin, output on stdout, requests on
 * fd 3 answered on stdin, stderr kept (its tail) for the failure message.
 * Own process group, so a stop reaches whatever the job started.
 */
export function startJobProcess(options: JobProcessOptions): RunHandle {
  const child = spawn(options.python, [JOB_FILE], {
    cwd: options.cwd,
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    detached: true,
  });
  const log = options.logger;
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
  let stderr = Buffer.alloc(0);
  let exited = false;
  let killTimer: NodeJS.Timeout | undefined;
  const stdin = child.stdin;
  const pipeError = (err: Error) => log.debug({ err: err.message }, 'job pipe error');
  for (const stream of [child.stdin, child.stdout, child.stderr, child.stdio[REQUEST_FD]]) {
    (stream as Readable | Writable | null)?.on('error', pipeError);
  }

  const writeLine = (value: unknown) => {
    if (stdin.writable) stdin.write(`${JSON.stringify(value)}\n`);
  };
  writeLine(options.input);

  const decoder = new StringDecoder('utf8');
  child.stdout.on('data', (data: Buffer) => options.io.onOutput(decoder.write(data)));
  const stdoutEnded = new Promise<void>((resolve) => child.stdout.once('close', resolve));
  child.stderr.on('data', (data: Buffer) => {
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

  const signalGroup = (signal: NodeJS.Signals) => {
    if (exited || child.pid === undefined) return;
    try {
      // A negative pid addresses the job's process group.
      process.kill(-child.pid, signal);
    } catch {
      child.kill(signal);
    }
  };

  const done = new Promise<RunResult>((resolve) => {
    const errorLog = () => stderr.toString('utf8');
    child.once('error', (err) => {
      exited = true;
      resolve({ succeeded: false, errMsg: `${err.toString()}\n\nError log:\n${errorLog()}` });
    });
    child.once('exit', (code, signal) => {
      exited = true;
      clearTimeout(killTimer);
      void Promise.race([stdoutEnded, delay(DRAIN_AFTER_EXIT_MS)]).then(() => {
        const rest = decoder.end();
        if (rest) options.io.onOutput(rest);
        if (code === 0) resolve({ succeeded: true, errMsg: '' });
        else
          resolve({
            succeeded: false,
            errMsg: `Run failed with code ${code} and signal ${signal}\n\nError log:\n${errorLog()}`,
          });
      });
    });
  });

  return {
    done,
    stop: () => {
      if (exited || killTimer) return;
      signalGroup('SIGINT');
      killTimer = setTimeout(() => signalGroup('SIGKILL'), options.stopGraceMs);
    },
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
