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

/**
 * Creates the run's private folder: a copy of the task's files (not its
 * venv), owned by the job user, mode 0700. The job's cwd, HOME and TMPDIR;
 * what it writes there stays its own and goes away with the run.
 */
export async function createRunDir(taskDir: string, runDir: string, identity: JobIdentity): Promise<void> {
  await fsp.rm(runDir, { recursive: true, force: true });
  await fsp.cp(taskDir, runDir, {
    recursive: true,
    verbatimSymlinks: true,
    filter: (source) => source !== path.join(taskDir, VENV_DIR),
  });
  if (identity.kind === 'user') await chownTree(runDir, identity.uid, identity.gid);
  await fsp.chmod(runDir, 0o700);
}

/** Removes a run's folder (its job has ended: the whole process group is gone). */
export async function removeRunDir(runDir: string): Promise<void> {
  await fsp.rm(runDir, { recursive: true, force: true });
}

async function chownTree(target: string, uid: number, gid: number): Promise<void> {
  // lchown: a symlink from the archive is re-owned itself, never what it points to.
  await fsp.lchown(target, uid, gid);
  const stat = await fsp.lstat(target);
  if (!stat.isDirectory()) return;
  for (const entry of await fsp.readdir(target)) await chownTree(path.join(target, entry), uid, gid);
}

/** Empties `runs/`: folders an earlier life of the agent left (their jobs are ended by the start-up recovery). */
export function clearRunDirs(workDir: string): void {
  const runs = path.join(workDir, WORK_DIRS.runs);
  for (const entry of fs.readdirSync(runs))
    fs.rmSync(path.join(runs, entry), { recursive: true, force: true });
}
