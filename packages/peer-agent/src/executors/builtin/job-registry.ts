import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';

/** What is noted of a running job process. */
interface JobNote {
  pid: number;
  /** The process's start time (clock ticks since boot, /proc/<pid>/stat field 22): tells a reused pid apart. */
  startTime: string;
}

/**
 * The builtin executor's notes of its running job processes, one file per run
 * in `<workDir>/jobs/`, so that a later life of the agent can end what an
 * earlier one left running. A SIGKILLed agent cannot stop its jobs; their
 * pipes break, but a job that computes without printing keeps running (and
 * may write to Elasticsearch) while the run is reported failed. At the next
 * start the agent fails such runs (orphan-runs.service.ts) and, through the
 * executor's `abandon`, this kills the job's process group, if the pid still
 * names the same process (start time checked, Linux /proc).
 */
export class JobRegistry {
  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
  ) {}

  /** Notes a job process that has just been spawned. */
  record(runId: number, pid: number): void {
    const startTime = processStartTime(pid);
    if (startTime === null) return; // not Linux, or already gone
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      fs.writeFileSync(this.file(runId), JSON.stringify({ pid, startTime } satisfies JobNote));
    } catch (err) {
      this.logger.warn({ runId, err: String(err) }, 'job process not noted: a later agent could not end it');
    }
  }

  /** The job process ended normally. */
  forget(runId: number): void {
    fs.rmSync(this.file(runId), { force: true });
  }

  /**
   * Kills the process group of the run's job if it is still the process that
   * was noted; returns whether it did. The note is removed either way.
   */
  killLeftover(runId: number): boolean {
    let note: JobNote;
    try {
      note = JSON.parse(fs.readFileSync(this.file(runId), 'utf8')) as JobNote;
    } catch {
      return false;
    }
    this.forget(runId);
    if (!Number.isInteger(note.pid) || note.pid <= 1 || processStartTime(note.pid) !== note.startTime)
      return false;
    try {
      // A negative pid addresses the job's process group (it was spawned detached).
      process.kill(-note.pid, 'SIGKILL');
    } catch {
      return false;
    }
    this.logger.warn({ runId, pid: note.pid }, 'killed the job process an earlier agent left running');
    return true;
  }

  private file(runId: number): string {
    return path.join(this.dir, `${runId}.json`);
  }
}

/** Field 22 of /proc/<pid>/stat, or null when there is no such (live) process or no /proc. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') return null; // a zombie is gone for our purposes
    return fields[19] ?? null;
  } catch {
    return null;
  }
}
