import { spawn } from 'node:child_process';

/** How a helper command (tar, venv, pip) ended. */
export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The tail of stdout and stderr together. */
  output: string;
  timedOut: boolean;
  aborted: boolean;
  /** Set when the command could not be started at all. */
  spawnError?: string;
}

export interface CommandOptions {
  cwd?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  outputTailBytes?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs a command without a shell (arguments are never parsed, so task ids and
 * paths cannot inject anything), in its own process group so a timeout or an
 * abort kills whatever it started too (pip spawns its own children).
 */
export function runCommand(
  file: string,
  args: readonly string[],
  options: CommandOptions,
): Promise<CommandResult> {
  const tailBytes = options.outputTailBytes ?? 16 * 1024;
  return new Promise((resolve) => {
    let output = Buffer.alloc(0);
    let timedOut = false;
    let aborted = false;
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const collect = (data: Buffer) => {
      output = Buffer.concat([output, data]);
      if (output.length > tailBytes) output = output.subarray(output.length - tailBytes);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    const onAbort = () => {
      aborted = true;
      killGroup();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (result: Omit<CommandResult, 'output' | 'timedOut' | 'aborted'>) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      resolve({ ...result, output: output.toString('utf8'), timedOut, aborted });
    };
    child.once('error', (err) => finish({ code: null, signal: null, spawnError: err.message }));
    child.once('close', (code, signal) => finish({ code, signal }));
    if (options.signal?.aborted) onAbort();
  });
}
