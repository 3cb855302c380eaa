import type { JobLimits } from './job-sandbox';

/** Why the agent itself ended a job, if it did. */
export type KillCause = 'stop' | 'wall' | 'output';

/** What is known of a job's end. */
export interface JobEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  killedFor: KillCause | null;
  /** The tail of the job's stderr. */
  stderr: string;
}

/**
 * The limit a failed job ran into, in words for its failure message, or null.
 * The agent's own kills (wall time, output) are certain; the kernel's
 * (RLIMIT_CPU's SIGXCPU, RLIMIT_FSIZE's SIGXFSZ) are told by the signal; the
 * rest show only as the error Python raises when a system call is refused
 * under the limit (MemoryError for RLIMIT_AS, EFBIG where Python ignores
 * SIGXFSZ, EMFILE, EAGAIN from fork), so they are read from stderr.
 */
export function limitReason(end: JobEnd, limits: JobLimits): string | null {
  if (end.killedFor === 'wall') return `wall time limit of ${limits.wallMs} ms exceeded`;
  if (end.killedFor === 'output') return `output limit of ${limits.outputBytes} bytes exceeded`;
  if (end.killedFor === 'stop' || end.code === 0) return null;
  if (end.signal === 'SIGXCPU') return `CPU time limit of ${limits.cpuSeconds} s exceeded`;
  const fileTooLarge = end.signal === 'SIGXFSZ' || /\[Errno 27\]|File too large/.test(end.stderr);
  if (fileTooLarge && limits.fileSizeMb !== null)
    return `file size limit of ${limits.fileSizeMb} MB exceeded`;
  if (limits.memoryMb !== null && /\bMemoryError\b|\[Errno 12\]|Cannot allocate memory/.test(end.stderr))
    return `memory limit of ${limits.memoryMb} MB exceeded`;
  if (limits.openFiles !== null && /\[Errno 24\]|Too many open files/.test(end.stderr))
    return `open files limit of ${limits.openFiles} reached`;
  if (limits.processes !== null && /\[Errno 11\]|Resource temporarily unavailable/.test(end.stderr))
    return `process limit of ${limits.processes} (for all jobs of the job user) reached`;
  if (end.signal === 'SIGKILL' && limits.cpuSeconds !== null)
    return `killed by SIGKILL not sent by the agent (CPU time limit of ${limits.cpuSeconds} s, or the kernel's out-of-memory killer)`;
  return null;
}

/** The run's failure message ('' on success): RJR-shaped, with the limit first when one was hit. */
export function failureMessage(end: JobEnd, limits: JobLimits): string {
  const reason = limitReason(end, limits);
  const how = `code ${end.code} and signal ${end.signal}`;
  if (reason) return `Run failed: ${reason} (ended with ${how})\n\nError log:\n${end.stderr}`;
  if (end.code === 0) return '';
  return `Run failed with ${how}\n\nError log:\n${end.stderr}`;
}
