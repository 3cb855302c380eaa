import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { JobIdentity } from './job-user';

/** Folders of the work dir (the agent owns all of it; jobs get their own run folder only). */
export const WORK_DIRS = { tasks: 'tasks', runs: 'runs' } as const;

/** The venv inside a task's build directory, as the RJR names it (never copied into a run folder). */
export const VENV_DIR = '.env';

/**
 * Sets the work dir's modes so a job can reach what it needs and nothing
 * else: the work dir, `tasks/` and `runs/` are 0711 (passable, not listable:
 * a job finds neither other tasks nor other runs by listing), everything the
 * agent alone reads (`jobs/`, the build cache) is 0700/0600. Then checks that
 * the job user can pass every folder above the work dir; throws naming the
 * first one it cannot.
 */
export function secureWorkDir(
  workDir: string,
  identity: JobIdentity,
  privateEntries: readonly string[],
): void {
  fs.mkdirSync(workDir, { recursive: true });
  fs.chmodSync(workDir, 0o711);
  for (const dir of Object.values(WORK_DIRS)) {
    fs.mkdirSync(path.join(workDir, dir), { recursive: true });
    fs.chmodSync(path.join(workDir, dir), 0o711);
  }
  for (const entry of privateEntries) {
    const file = path.join(workDir, entry);
    const stat = fs.statSync(file, { throwIfNoEntry: false });
    if (stat) fs.chmodSync(file, stat.isDirectory() ? 0o700 : 0o600);
  }
  assertReachable(workDir, identity, 'agent.executor.workDir');
}

/**
 * Throws unless the job user may pass every folder above `target` (and
 * execute `target` itself when `execute` is set): modes checked as the
 * kernel would for its uid and primary group. Nothing to check when jobs run
 * as the agent itself.
 */
export function assertReachable(target: string, identity: JobIdentity, key: string, execute = false): void {
  if (identity.kind !== 'user') return;
  const allowed = (stat: fs.Stats, bits: number) =>
    stat.uid === identity.uid
      ? (stat.mode & (bits << 6)) !== 0
      : stat.gid === identity.gid
        ? (stat.mode & (bits << 3)) !== 0
        : (stat.mode & bits) !== 0;
  const refuse = (what: string, stat: fs.Stats) => {
    const mode = (stat.mode & 0o7777).toString(8).padStart(4, '0');
    throw new Error(`${key}: the job user ${identity.name} cannot reach ${target}: ${what} has mode ${mode}`);
  };
  if (execute) {
    const stat = fs.statSync(target);
    if (!allowed(stat, 0o1)) refuse(target, stat);
  }
  for (let dir = path.dirname(target); ; dir = path.dirname(dir)) {
    const stat = fs.statSync(dir);
    if (!allowed(stat, 0o1)) refuse(dir, stat);
    if (dir === path.dirname(dir)) return;
  }
}

/**
 * Makes a built task folder safe to share with jobs: readable, never
 * writable by them, no setuid or setgid bit (an archive extracted by root
 * keeps its modes). Symlinks are left as they are (their modes mean nothing).
 * Anything else is removed: tar run by root creates the device nodes an
 * archive holds, and a readable node of the disk would expose everything.
 */
export async function sealTree(dir: string): Promise<void> {
  const stat = await fsp.lstat(dir);
  if (stat.isSymbolicLink()) return;
  if (stat.isDirectory()) {
    await fsp.chmod(dir, 0o755);
    for (const entry of await fsp.readdir(dir)) await sealTree(path.join(dir, entry));
    return;
  }
  if (!stat.isFile()) return fsp.rm(dir, { force: true });
  await fsp.chmod(dir, stat.mode & 0o100 ? 0o755 : 0o644);
}

/** One entry of a built task's folder (its venv left out), as {@link listTaskTree} found it. */
export interface TaskTreeEntry {
  /** Path relative to the task folder; a folder comes before what it holds. */
  rel: string;
  kind: 'dir' | 'file' | 'symlink';
  /** A symlink's target, as stored. */
  target?: string;
}

/**
 * What a run folder is copied from: the task's files and folders without
 * its venv. Sealed (sealTree) and immutable until the next build, so the
 * builder lists it once per build.
 */
export async function listTaskTree(taskDir: string): Promise<TaskTreeEntry[]> {
  const out: TaskTreeEntry[] = [];
  const walk = async (rel: string) => {
    for (const entry of await fsp.readdir(path.join(taskDir, rel), { withFileTypes: true })) {
      const child = rel === '' ? entry.name : path.join(rel, entry.name);
      if (child === VENV_DIR) continue;
      if (entry.isDirectory()) {
        out.push({ rel: child, kind: 'dir' });
        await walk(child);
      } else if (entry.isFile()) {
        out.push({ rel: child, kind: 'file' });
      } else if (entry.isSymbolicLink()) {
        out.push({ rel: child, kind: 'symlink', target: await fsp.readlink(path.join(taskDir, child)) });
      }
    }
  };
  await walk('');
  return out;
}

/**
 * Up to this many entries, a run folder is made with synchronous calls: each
 * is a few microseconds of the agent's time on its own disk, while each
 * asynchronous call waits for a thread-pool thread and then for the event
 * loop, tens of milliseconds apiece on a busy machine, all before the run
 * can start. A larger task is copied asynchronously. The same bound says
 * which run folders are removed synchronously ({@link removeRunDir}).
 */
const SYNC_COPY_MAX_ENTRIES = 64;

/**
 * Creates the run's private folder: a copy of the task's files (not its
 * venv; `tree` from {@link listTaskTree}), owned by the job user, mode 0700.
 * The job's cwd, HOME and TMPDIR; what it writes there stays its own and
 * goes away with the run. One file system call per entry and one per
 * ownership change.
 */
export async function createRunDir(
  taskDir: string,
  runDir: string,
  identity: JobIdentity,
  tree: readonly TaskTreeEntry[],
): Promise<void> {
  const ops = tree.length <= SYNC_COPY_MAX_ENTRIES ? syncOps : asyncOps;
  try {
    await ops.mkdir(runDir, 0o700);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Left by an earlier execution that was not cleaned up: start afresh.
    await fsp.rm(runDir, { recursive: true, force: true });
    await ops.mkdir(runDir, 0o700);
  }
  const own = async (target: string) => {
    // lchown: a symlink from the archive is re-owned itself, never what it points to.
    if (identity.kind === 'user') await ops.lchown(target, identity.uid, identity.gid);
  };
  for (const entry of tree) {
    const dest = path.join(runDir, entry.rel);
    // copyFile keeps the file's mode; folders get the mode sealTree gave them.
    if (entry.kind === 'dir') await ops.mkdir(dest, 0o755);
    else if (entry.kind === 'file') await ops.copyFile(path.join(taskDir, entry.rel), dest);
    else await ops.symlink(entry.target ?? '', dest);
    await own(dest);
  }
  await own(runDir);
}

interface DirOps {
  mkdir(dir: string, mode: number): unknown;
  copyFile(from: string, to: string): unknown;
  symlink(target: string, at: string): unknown;
  lchown(target: string, uid: number, gid: number): unknown;
}

const syncOps: DirOps = {
  mkdir: (dir, mode) => fs.mkdirSync(dir, { mode }),
  copyFile: (from, to) => fs.copyFileSync(from, to),
  symlink: (target, at) => fs.symlinkSync(target, at),
  lchown: (target, uid, gid) => fs.lchownSync(target, uid, gid),
};

const asyncOps: DirOps = {
  mkdir: (dir, mode) => fsp.mkdir(dir, { mode }),
  copyFile: (from, to) => fsp.copyFile(from, to),
  symlink: (target, at) => fsp.symlink(target, at),
  lchown: (target, uid, gid) => fsp.lchown(target, uid, gid),
};

/**
 * Removes a run's folder (its job has ended: the whole process group is
 * gone). A folder of at most {@link SYNC_COPY_MAX_ENTRIES} entries, the
 * usual case, goes with synchronous calls: `fs.rm`'s recursive walk costs the
 * agent about four times the CPU (thread-pool hand-overs for every entry,
 * measured 230 against 37 µs for a folder of one file) and waits for the
 * thread pool on a busy machine. A larger folder, or one that changed under
 * the walk, is removed by `fs.rm`.
 */
export async function removeRunDir(runDir: string): Promise<void> {
  if (removeSmallTreeSync(runDir, SYNC_COPY_MAX_ENTRIES)) return;
  await fsp.rm(runDir, { recursive: true, force: true });
}

/**
 * Removes `dir` and what it holds with synchronous calls when that is at
 * most `budget` entries; symlinks are removed, never followed. False when
 * the folder is larger, or a call failed (an entry that appeared meanwhile,
 * a folder gone already): what is left is then for `fs.rm`.
 */
function removeSmallTreeSync(dir: string, budget: number): boolean {
  /** Entries in the order they can go: what a folder holds before the folder. */
  const order: Array<{ at: string; dir: boolean }> = [];
  const walk = (folder: string): boolean => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      if (order.length >= budget) return false;
      const at = path.join(folder, entry.name);
      if (entry.isDirectory()) {
        if (!walk(at)) return false;
        order.push({ at, dir: true });
      } else {
        order.push({ at, dir: false });
      }
    }
    return true;
  };
  try {
    // The folder itself is never followed either (readdir would list a link's target).
    if (!fs.lstatSync(dir).isDirectory()) {
      fs.unlinkSync(dir);
      return true;
    }
    if (!walk(dir)) return false;
    for (const { at, dir: isDir } of order) {
      if (isDir) fs.rmdirSync(at);
      else fs.unlinkSync(at);
    }
    fs.rmdirSync(dir);
    return true;
  } catch {
    return false;
  }
}

/** Empties `runs/`: folders an earlier life of the agent left (their jobs are ended by the start-up recovery). */
export function clearRunDirs(workDir: string): void {
  const runs = path.join(workDir, WORK_DIRS.runs);
  for (const entry of fs.readdirSync(runs))
    fs.rmSync(path.join(runs, entry), { recursive: true, force: true });
}
