import { execFileSync } from 'node:child_process';

/** Who a job runs as: a dedicated user, or (development) the agent's own user. */
export type JobIdentity =
  | { kind: 'user'; name: string; uid: number; gid: number }
  | { kind: 'same'; name: string; uid: number; gid: number };

/** The agent's own ids (process.getuid/getgid), passed in so tests can pretend. */
export interface AgentIds {
  uid: number;
  gid: number;
}

/** A user account as the system's user database (NSS) knows it. */
export interface Account {
  uid: number;
  gid: number;
}

/** Looks a user up with `getent passwd` (files, LDAP, whatever NSS serves); null when there is none. */
export function lookupAccount(name: string): Account | null {
  let line: string;
  try {
    line = execFileSync('getent', ['passwd', name], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return null; // getent exits 2 for an unknown user
  }
  const fields = line.trim().split(':');
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : null;
}

const CREATE_HINT = (name: string) =>
  `create it as root: useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ${name} ` +
  '(scripts/start.sh and scripts/test.sh do so when run as root)';

/**
 * Decides who jobs run as, or throws with the one line an operator needs.
 * The rules: never root; a dedicated user needs the agent to be root (only
 * root can switch users); an agent that is not root runs jobs as itself only
 * with `allowSameUser` (development), which isolates nothing by user.
 */
export function resolveJobIdentity(
  config: { runAs: string; allowSameUser: boolean },
  agent: AgentIds,
  lookup: (name: string) => Account | null = lookupAccount,
): JobIdentity {
  const key = 'agent.executor.runAs';
  const account = lookup(config.runAs);
  if (agent.uid !== 0) {
    if (config.allowSameUser) return { kind: 'same', name: config.runAs, uid: agent.uid, gid: agent.gid };
    const why =
      account?.uid === agent.uid
        ? `${config.runAs} is the agent's own user, so jobs could read its config and signal it`
        : `the agent runs as uid ${agent.uid}, not root, so it cannot run jobs as ${config.runAs}`;
    throw new Error(
      `${key}: ${why}: run the agent as root, or set agent.executor.allowSameUser: true ` +
        "(development only: jobs then run with the agent's own rights)",
    );
  }
  if (!account) throw new Error(`${key}: user ${config.runAs} does not exist: ${CREATE_HINT(config.runAs)}`);
  if (account.uid === 0 || account.gid === 0)
    throw new Error(`${key}: ${config.runAs} has uid or gid 0 (root); jobs never run as root`);
  return { kind: 'user', name: config.runAs, uid: account.uid, gid: account.gid };
}

/**
 * The interpreter behind `python` (a name on PATH, a shim or a symlink) and
 * its standard library, as the interpreter itself reports them: each venv
 * links to them, so the job user must reach both (pyenv's, under root's
 * 0700 home, it cannot).
 */
export function interpreterPaths(python: string): { executable: string; prefix: string } {
  let out: string;
  try {
    out = execFileSync(python, ['-c', 'import sys; print(sys.executable); print(sys.base_prefix)'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30_000,
    });
  } catch (err) {
    throw new Error(
      `agent.executor.python: ${python} could not be run: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const [executable = '', prefix = ''] = out.trim().split('\n');
  return { executable, prefix };
}
