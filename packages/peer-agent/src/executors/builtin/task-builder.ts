import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { BuildFailure } from '../executor';
import { runCommand, type CommandResult } from '../command';
import type { BuildCache, BuildKey } from './build-cache';
import { listTaskTree, sealTree, VENV_DIR, WORK_DIRS, type TaskTreeEntry } from './work-dir';

export { VENV_DIR } from './work-dir';
const ARCHIVE_FILE = '___archive.tar';
const DEFAULT_SUBTYPE = '__default__';

export interface TaskBuilderOptions {
  workDir: string;
  python: string;
  subtypes: Readonly<Record<string, { libs: readonly string[] }>>;
  pipArgs: readonly string[];
  ivisWheelDir: string | null;
  buildTimeoutMs: number;
  cache: BuildCache;
  logger: Logger;
}

/** One build request. */
export interface BuildSpec {
  taskId: number;
  type: string;
  subtype: string | undefined;
  /** The task archive bytes (a tar file). */
  archive: Buffer;
}

/**
 * Builds a task's directory as the RJR does (ivis-protocol.md 6.1): extract
 * the tar archive, create a venv, install the subtype's libraries. Unlike the
 * RJR it keeps the archive as bytes (never decoded as text), runs no shell,
 * and gives up after a deadline so a pip that waits for an unreachable index
 * cannot hold the run forever.
 */
export class TaskBuilder {
  /** Per task: the build key its folder was verified against (cache entry and venv), and its tree. */
  private readonly verified = new Map<number, { hash: string; tree?: Promise<TaskTreeEntry[]> }>();

  constructor(private readonly options: TaskBuilderOptions) {}

  taskDir(taskId: number): string {
    return path.join(this.options.workDir, WORK_DIRS.tasks, String(taskId));
  }

  pythonOf(taskId: number): string {
    return path.join(this.taskDir(taskId), VENV_DIR, 'bin', 'python');
  }

  keyOf(spec: BuildSpec): BuildKey {
    const hash = createHash('sha512').update(spec.archive).digest('hex');
    return { type: spec.type, subtype: spec.subtype ?? DEFAULT_SUBTYPE, hash };
  }

  /** Whether the task's current build was made from exactly this spec. */
  async isBuilt(spec: BuildSpec): Promise<boolean> {
    const key = this.keyOf(spec);
    // Checked once per build: the folder only changes under the task's exclusive lease (build, remove).
    if (
      this.verified.get(spec.taskId)?.hash === key.hash &&
      (await this.options.cache.matches(spec.taskId, key))
    )
      return true;
    if (!(await this.options.cache.matches(spec.taskId, key))) return false;
    if (!(await exists(this.pythonOf(spec.taskId)))) return false;
    this.verified.set(spec.taskId, { hash: key.hash });
    return true;
  }

  /** The task's files without its venv (listed once per build); the caller holds the task's lease. */
  tree(taskId: number): Promise<TaskTreeEntry[]> {
    const entry = this.verified.get(taskId) ?? { hash: '' };
    this.verified.set(taskId, entry);
    entry.tree ??= listTaskTree(this.taskDir(taskId)).catch((err: unknown) => {
      entry.tree = undefined;
      throw err;
    });
    return entry.tree;
  }

  /** Builds from scratch; the caller holds the task exclusively. */
  async build(spec: BuildSpec, signal: AbortSignal): Promise<void> {
    const libs = this.libsFor(spec);
    const key = this.keyOf(spec);
    const dir = this.taskDir(spec.taskId);
    const deadline = Date.now() + this.options.buildTimeoutMs;
    const step = async (what: string, file: string, args: string[]) => {
      const result = await runCommand(file, args, {
        cwd: dir,
        timeoutMs: Math.max(deadline - Date.now(), 1),
        signal,
      });
      checkStep(what, result, this.options.buildTimeoutMs);
    };
    // Invalidate first: a build that dies halfway must not look cached.
    this.verified.delete(spec.taskId);
    await this.options.cache.remove(spec.taskId);
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, ARCHIVE_FILE), spec.archive);
    // As root, tar would otherwise apply the archive's uid/gid and modes (setuid bits included).
    await step('archive extraction', 'tar', [
      '-xf',
      ARCHIVE_FILE,
      '--no-same-owner',
      '--no-same-permissions',
    ]);
    await fs.rm(path.join(dir, ARCHIVE_FILE), { force: true });
    const needsPip = libs.length > 0 || this.options.ivisWheelDir !== null;
    // Without anything to install, pip is dead weight (and most of venv's 4-5 s).
    await step('venv creation', this.options.python, [
      '-m',
      'venv',
      ...(needsPip ? [] : ['--without-pip']),
      VENV_DIR,
    ]);
    const pip = [
      path.join(VENV_DIR, 'bin', 'python'),
      ['-m', 'pip', 'install', '--disable-pip-version-check'],
    ] as const;
    if (libs.length > 0)
      await step('library installation', pip[0], [...pip[1], ...this.options.pipArgs, ...libs]);
    if (this.options.ivisWheelDir !== null) {
      await step('ivis helper installation', pip[0], [
        ...pip[1],
        '--no-index',
        `--find-links=${this.options.ivisWheelDir}`,
        'ivis',
      ]);
    }
    // Jobs read the build and never write it, whatever the agent's umask and the archive's modes.
    await sealTree(dir);
    await this.options.cache.set(spec.taskId, key);
    this.options.logger.info({ taskId: spec.taskId, subtype: key.subtype, libs: libs.length }, 'task built');
  }

  /** Removes a task's build; the caller holds the task exclusively. */
  async remove(taskId: number): Promise<void> {
    this.verified.delete(taskId);
    await this.options.cache.remove(taskId);
    await fs.rm(this.taskDir(taskId), { recursive: true, force: true });
  }

  /** The subtype's libraries; throws {@link BuildFailure} for a type or subtype this peer cannot build. */
  libsFor(spec: BuildSpec): readonly string[] {
    if (spec.type !== 'python')
      throw new BuildFailure(`Remote Build Failed\nunsupported task type ${spec.type}`);
    const subtype = spec.subtype ?? DEFAULT_SUBTYPE;
    const entry = this.options.subtypes[subtype];
    if (!entry) {
      const known = Object.keys(this.options.subtypes).join(', ') || 'none';
      throw new BuildFailure(`Remote Build Failed\nunknown task subtype ${subtype} (configured: ${known})`);
    }
    return entry.libs;
  }
}

function checkStep(what: string, result: CommandResult, timeoutMs: number): void {
  if (result.aborted) {
    const err = new Error(`${what} aborted`);
    err.name = 'AbortError';
    throw err;
  }
  if (result.timedOut)
    throw new BuildFailure(
      `Remote Build Failed\n${what} timed out (build limit ${timeoutMs} ms)\n${result.output}`,
    );
  if (result.spawnError)
    throw new BuildFailure(`Remote Build Failed\n${what} could not start: ${result.spawnError}`);
  if (result.code !== 0) {
    throw new BuildFailure(
      `Remote Build Failed\n${what} ended with code ${result.code} and signal ${result.signal}:\n${result.output}`,
    );
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}
