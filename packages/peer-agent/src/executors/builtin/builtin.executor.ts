import type { Logger } from 'pino';
import { BuildFailure, type Executor, type ExecutorRun, type PreparedRun, type RunIo } from '../executor';
import path from 'node:path';
import type { JobSpawner } from './job-launcher';
import { answerJobRequest, type RunRequestSender } from './job-requests';
import { JOB_FILE, startJobProcess } from './job-process';
import type { JobRegistry } from './job-registry';
import { jobCommand, jobEnv, type JobLimits, type SandboxTools } from './job-sandbox';
import type { JobIdentity } from './job-user';
import { createRunDir, removeRunDir, WORK_DIRS } from './work-dir';
import type { TaskGate } from './task-gate';
import type { BuildSpec, TaskBuilder } from './task-builder';

export interface BuiltinExecutorOptions {
  builder: TaskBuilder;
  gate: TaskGate;
  /** Where jobs send requests (IVIS-core's runRequest endpoint through the forwarder). */
  sendRequest: RunRequestSender;
  /** What jobs are told about IVIS-core (the forwarder's ports on the RPS host). */
  ivis: { trustedUrlBase: string; sandboxUrlBase: string; es: { host: string; port: number } };
  stopGraceMs: number;
  stderrTailBytes: number;
  /** Starts job processes (job-launcher.ts). */
  spawner: JobSpawner & { close?(): void };
  /** Notes of running job processes, for a later life of the agent to end. */
  jobs: JobRegistry;
  workDir: string;
  /** Who jobs run as (job-user.ts) and what confines them (job-sandbox.ts). */
  identity: JobIdentity;
  tools: SandboxTools;
  limits: JobLimits;
  /** The agent's own hard limits, the most an agent that is not root can give a job. */
  hardLimits: Map<string, number | null>;
  logger: Logger;
}

/** Runs Python jobs on this peer itself (ivis-protocol.md 6). */
export class BuiltinExecutor implements Executor {
  readonly kind = 'builtin' as const;
  readonly agentPushes = true;

  constructor(private readonly options: BuiltinExecutorOptions) {}

  async prepare(run: ExecutorRun, signal: AbortSignal): Promise<PreparedRun> {
    const spec = toBuildSpec(run);
    const { builder, gate } = this.options;
    builder.libsFor(spec);
    // Fast path: an unchanged task is shared by its concurrent runs.
    let lease = await gate.shared(run.taskId, signal);
    try {
      if (!(await builder.isBuilt(spec))) {
        lease.release();
        lease = await gate.exclusive(run.taskId, signal);
        // Another run may have built it while this one waited.
        if (!(await builder.isBuilt(spec))) await builder.build(spec, signal);
        lease.downgrade();
      }
    } catch (err) {
      lease.release();
      throw asBuildFailure(err);
    }
    try {
      return await this.withRunDir(run, lease);
    } catch (err) {
      lease.release();
      throw err;
    }
  }

  /** The run's private folder, made before the start and removed once the job (group) is gone. */
  private async withRunDir(run: ExecutorRun, lease: { release(): void }): Promise<PreparedRun> {
    const runDir = path.join(this.options.workDir, WORK_DIRS.runs, `${run.runId}-${run.execution}`);
    let ended: Promise<unknown> = Promise.resolve();
    let removed: Promise<void> | undefined;
    const removeDir = () => {
      removed ??= ended
        .then(() => removeRunDir(runDir))
        .catch((err: unknown) =>
          this.options.logger.warn({ runId: run.runId, err: String(err) }, 'run folder not removed'),
        );
      return removed;
    };
    try {
      const { builder, identity } = this.options;
      await createRunDir(builder.taskDir(run.taskId), runDir, identity, await builder.tree(run.taskId));
    } catch (err) {
      await removeDir();
      throw new BuildFailure(`Remote Build Failed\nthe run folder could not be made: ${String(err)}`);
    }
    return {
      start: (io) => {
        const handle = this.start(run, runDir, io);
        ended = handle.done;
        void removeDir();
        return handle;
      },
      release: () => {
        lease.release();
        void removeDir();
      },
    };
  }

  async deleteTask(taskId: number): Promise<void> {
    const lease = await this.options.gate.exclusive(taskId);
    try {
      await this.options.builder.remove(taskId);
    } finally {
      lease.release();
    }
  }

  /**
   * A run of an earlier life of this agent: its job process lost its pipes
   * but may still be computing; it is killed if it is still running.
   */
  async abandon(runId: number): Promise<void> {
    this.options.jobs.killLeftover(runId);
  }

  close(): void {
    this.options.spawner.close?.();
  }

  private start(run: ExecutorRun, runDir: string, io: RunIo) {
    const { body } = run;
    const { ivis, builder } = this.options;
    const input = {
      context: { jobId: run.jobId },
      params: body.params,
      entities: body.entities,
      owned: body.owned,
      accessToken: body.accessToken,
      // Plain HTTP to the forwarder: the pool's certificate never leaves the RPS host.
      certs: false,
      es: { host: ivis.es.host, port: String(ivis.es.port) },
      server: { trustedUrlBase: ivis.trustedUrlBase, sandboxUrlBase: ivis.sandboxUrlBase },
      state: body.state,
    };
    const { jobs, tools, identity, limits, hardLimits } = this.options;
    const python = builder.pythonOf(run.taskId);
    const handle = startJobProcess({
      command: jobCommand({ tools, identity, limits, python, args: [JOB_FILE], hard: hardLimits }),
      cwd: runDir,
      env: jobEnv({ venvBin: path.dirname(python), home: runDir }),
      limits,
      input,
      io,
      onRequest: (line) => answerJobRequest(line, run.jobId, this.options.sendRequest),
      stopGraceMs: this.options.stopGraceMs,
      stderrTailBytes: this.options.stderrTailBytes,
      logger: this.options.logger.child({ runId: run.runId }),
      spawner: this.options.spawner,
      onSpawn: (pid) => jobs.record(run.runId, pid),
    });
    void handle.done.finally(() => jobs.forget(run.runId));
    return handle;
  }
}

function toBuildSpec(run: ExecutorRun): BuildSpec {
  const archive = run.body.codeArchive;
  if (archive.type !== 'Buffer' || !Array.isArray(archive.data)) {
    throw new BuildFailure('Remote Build Failed\ncodeArchive is not a Buffer of bytes');
  }
  return {
    taskId: run.taskId,
    type: run.body.type,
    subtype: run.body.subtype,
    // Bytes stay bytes: the RJR decoded them as UTF-8 and broke binary files.
    archive: Buffer.from(archive.data as number[]),
  };
}

function asBuildFailure(err: unknown): Error {
  if (err instanceof BuildFailure || (err instanceof Error && err.name === 'AbortError')) return err;
  return new BuildFailure(`Remote Build Failed\n${err instanceof Error ? err.message : String(err)}`);
}
