import fs from 'node:fs';
import path from 'node:path';
import type { JobIdentity } from './job-user';

/** `agent.executor.limits`: what one job may use; null switches a limit off. */
export interface JobLimits {
  wallMs: number | null;
  memoryMb: number | null;
  cpuSeconds: number | null;
  openFiles: number | null;
  /** RLIMIT_NPROC: counted per user, so for all jobs of the job user together. */
  processes: number | null;
  fileSizeMb: number | null;
  /** Bytes of stdout and stderr together. */
  outputBytes: number | null;
}

/** Seconds between RLIMIT_CPU's SIGXCPU (soft) and its SIGKILL (hard), for a job that ignores SIGXCPU. */
const CPU_HARD_EXTRA_S = 5;

/** The two util-linux tools the launch goes through (Debian's essential util-linux package). */
export interface SandboxTools {
  prlimit: string;
  setpriv: string;
}

/** Finds prlimit and setpriv on PATH; throws naming what is missing. */
export function findSandboxTools(searchPath = process.env.PATH ?? '/usr/bin:/bin'): SandboxTools {
  const find = (name: string) => {
    for (const dir of searchPath.split(':').filter(Boolean)) {
      const file = path.join(dir, name);
      try {
        fs.accessSync(file, fs.constants.X_OK);
        return file;
      } catch {
        // not here
      }
    }
    throw new Error(
      `agent.executor: ${name} (Debian package util-linux) is not on PATH; jobs cannot be confined`,
    );
  };
  return { prlimit: find('prlimit'), setpriv: find('setpriv') };
}

/** Hard limits of this process from /proc/self/limits (resource name → value, null = unlimited). */
export function readHardLimits(text?: string): Map<string, number | null> {
  const limits = new Map<string, number | null>();
  let source = text;
  try {
    source ??= fs.readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return limits;
  }
  for (const line of source.split('\n').slice(1)) {
    const match = /^(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
    if (!match?.[1] || !match[3]) continue;
    limits.set(match[1], match[3] === 'unlimited' ? null : Number(match[3]));
  }
  return limits;
}

/**
 * The command that starts `python job.py` confined: prlimit sets the
 * resource limits (soft = hard, so the job cannot raise them), then setpriv
 * drops to the job user with no supplementary groups and no_new_privs (a
 * setuid binary gains nothing), then execs python. Each step execs the next,
 * so the job keeps the pid (and the process group) Node spawned.
 *
 * An agent that is not root cannot raise a hard limit, so each limit is
 * capped at the agent's own hard limit (`hard`); as root no cap applies.
 */
export function jobCommand(options: {
  tools: SandboxTools;
  identity: JobIdentity;
  limits: JobLimits;
  python: string;
  args: readonly string[];
  hard?: Map<string, number | null>;
}): { file: string; args: string[] } {
  const { tools, identity, limits } = options;
  const root = identity.kind === 'user';
  const cap = (value: number, resource: string) => {
    const hard = root ? null : options.hard?.get(resource);
    return hard === null || hard === undefined ? value : Math.min(value, hard);
  };
  const rlimits: string[] = [];
  const set = (flag: string, resource: string, soft: number | null, extra = 0) => {
    if (soft === null) return;
    rlimits.push(`--${flag}=${cap(soft, resource)}:${cap(soft + extra, resource)}`);
  };
  const mb = (value: number | null) => (value === null ? null : value * 1024 * 1024);
  set('as', 'Max address space', mb(limits.memoryMb));
  set('cpu', 'Max cpu time', limits.cpuSeconds, CPU_HARD_EXTRA_S);
  set('nofile', 'Max open files', limits.openFiles);
  set('fsize', 'Max file size', mb(limits.fileSizeMb));
  // Per user: with the agent's own user it would count the agent's (and its owner's) processes too.
  if (root) set('nproc', 'Max processes', limits.processes);
  rlimits.push('--core=0:0');
  const drop = root
    ? [`--reuid=${identity.uid}`, `--regid=${identity.gid}`, '--clear-groups', '--no-new-privs']
    : ['--no-new-privs'];
  return {
    file: tools.prlimit,
    args: [...rlimits, '--', tools.setpriv, ...drop, '--', options.python, ...options.args],
  };
}

/** The job's environment: nothing of the agent's (REDIS_URL, for one, is a secret). */
export function jobEnv(options: { venvBin: string; home: string; lang?: string }): NodeJS.ProcessEnv {
  return {
    PATH: `${options.venvBin}:/usr/local/bin:/usr/bin:/bin`,
    HOME: options.home,
    TMPDIR: options.home,
    LANG: options.lang ?? 'C.UTF-8',
  };
}
