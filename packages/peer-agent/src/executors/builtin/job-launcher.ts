import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { processStartTime } from './job-registry';

/** A job process started by the {@link JobLauncher}, with its four stdio ends. */
export interface LaunchedJob {
  pid: number;
  stdin: Socket;
  stdout: Socket;
  stderr: Socket;
  /** fd 3 of the job: its request channel. */
  requests: Socket;
  /** Settles when the job process has exited (and was reaped by the launcher). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** What starts a job's command: the {@link JobLauncher} in the agent, anything alike in tests. */
export interface JobSpawner {
  /** Rejects when the command cannot be started (the message says why). */
  spawn(
    command: { file: string; args: readonly string[] },
    options: { cwd: string; env: NodeJS.ProcessEnv },
  ): Promise<LaunchedJob>;
}

/**
 * The launcher process: Python, reading spawn requests from Node's IPC
 * channel (JSON lines), starting each with subprocess (vfork + exec, its own
 * session), and handing the agent the job's stdio as four Unix socket ends
 * passed over that channel (Node's `NODE_HANDLE` messages, one at a time,
 * each waiting for Node's acknowledgement). It reaps the jobs and reports
 * their exit. It exits when the agent goes away (the channel closes); the
 * jobs then lose their stdio, as they would with the agent as their parent.
 */
export const LAUNCHER_SOURCE = String.raw`
import json, os, signal, socket, subprocess, sys, threading

CHANNEL = int(os.environ['NODE_CHANNEL_FD'])
# Jobs inherit the launcher's niceness: the agent's own work (dispatch, pushes, heartbeats) goes first.
os.nice(int(os.environ.get('RPS_JOB_NICE', '0')))
chan = socket.socket(fileno=os.dup(CHANNEL))
devnull = os.open(os.devnull, os.O_RDWR)
# fd 3 stays taken, so no socket lands there: each job's fd 3 is put there for its spawn only.
os.dup2(devnull, 3)
if CHANNEL != 3:
    os.close(CHANNEL)
write_lock = threading.Lock()
acks = threading.Semaphore(0)
requests = []
pending = threading.Condition()

def send(obj, fd=None):
    data = (json.dumps(obj) + '\n').encode()
    with write_lock:
        if fd is not None:
            data = data[socket.send_fds(chan, [data], [fd]):]
        if data:
            chan.sendall(data)

def watch(rid, proc):
    rc = proc.wait()
    if rc >= 0:
        send({'exited': rid, 'code': rc, 'signal': None})
    else:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = 'SIG%d' % -rc
        send({'exited': rid, 'code': None, 'signal': name})

def start(req):
    rid = req['spawn']
    pairs = [socket.socketpair() for _ in range(4)]
    try:
        os.dup2(pairs[3][0].fileno(), 3)
        try:
            proc = subprocess.Popen(
                [req['file']] + req['args'], cwd=req['cwd'], env=req['env'],
                stdin=pairs[0][0].fileno(), stdout=pairs[1][0].fileno(), stderr=pairs[2][0].fileno(),
                pass_fds=(3,), start_new_session=True)
        finally:
            os.dup2(devnull, 3)
    except Exception as err:
        for a, b in pairs:
            a.close()
            b.close()
        send({'failed': rid, 'error': '%s: %s' % (req['file'], err)})
        return
    for a, _ in pairs:
        a.close()
    send({'spawned': rid, 'pid': proc.pid})
    threading.Thread(target=watch, args=(rid, proc), daemon=True).start()
    for i, (_, b) in enumerate(pairs):
        send({'cmd': 'NODE_HANDLE', 'type': 'net.Socket', 'msg': {'stdio': rid, 'fd': i}}, b.fileno())
        acks.acquire()
        b.close()

def starter():
    while True:
        with pending:
            while not requests:
                pending.wait()
            req = requests.pop(0)
        start(req)

threading.Thread(target=starter, daemon=True).start()
buf = b''
while True:
    chunk = chan.recv(65536)
    if not chunk:
        os._exit(0)
    buf += chunk
    while b'\n' in buf:
        line, buf = buf.split(b'\n', 1)
        msg = json.loads(line)
        if not isinstance(msg, dict):
            continue
        if msg.get('cmd') in ('NODE_HANDLE_ACK', 'NODE_HANDLE_NACK'):
            acks.release()
        elif 'spawn' in msg:
            with pending:
                requests.append(msg)
                pending.notify()
`;

interface Pending {
  resolve: (job: LaunchedJob) => void;
  reject: (err: Error) => void;
  pid?: number;
  fds: Array<Socket | undefined>;
  exit?: (result: { code: number | null; signal: NodeJS.Signals | null }) => void;
  exited?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitedWith?: { code: number | null; signal: NodeJS.Signals | null };
  /** Resolved: the caller has the job's ends. */
  handedOver?: boolean;
}

type LauncherMessage =
  | { spawned: number; pid: number }
  | { failed: number; error: string }
  | { exited: number; code: number | null; signal: NodeJS.Signals | null }
  | { stdio: number; fd: number };

/** How often a job whose launcher died is checked for having exited. */
const ORPHAN_POLL_MS = 200;

/**
 * Starts job processes through one long-lived launcher process (see
 * {@link LAUNCHER_SOURCE}) instead of `child_process.spawn` in the agent.
 * Node forks the whole agent to spawn, and waits, blocking its event loop,
 * until the child has exec'd: tens of milliseconds per job on a busy
 * machine, during which no other run of the agent is claimed, started or
 * reported. The launcher's vfork costs about a millisecond, in its own
 * process. The launcher is started on first use (and again if it died).
 */
export class JobLauncher implements JobSpawner {
  private child: ChildProcess | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly python: string,
    private readonly logger: Logger,
    /** Added to the agent's niceness for the jobs (0-19, `agent.executor.nice`). */
    private readonly nice = 0,
  ) {}

  spawn(
    command: { file: string; args: readonly string[] },
    options: { cwd: string; env: NodeJS.ProcessEnv },
  ): Promise<LaunchedJob> {
    if (this.closed) return Promise.reject(new Error('job launcher closed'));
    const child = this.ensure();
    const id = this.nextId++;
    return new Promise<LaunchedJob>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, fds: [] });
      child.send(
        { spawn: id, file: command.file, args: command.args, cwd: options.cwd, env: options.env },
        (err) => {
          if (err) this.fail(id, new Error(`job launcher unreachable: ${err.message}`));
        },
      );
    });
  }

  /** Stops the launcher; jobs already started go on (their stdio is the agent's). */
  close(): void {
    this.closed = true;
    this.child?.kill('SIGTERM');
    this.child = undefined;
  }

  private ensure(): ChildProcess {
    if (this.child) return this.child;
    const child = spawn(this.python, ['-c', LAUNCHER_SOURCE], {
      // Nothing of the agent's environment (the Redis URL is a secret); jobs get their own.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', RPS_JOB_NICE: String(this.nice) },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'json',
    });
    let stderr = '';
    child.stderr?.on('data', (data: Buffer) => {
      stderr = (stderr + data.toString('utf8')).slice(-4000);
    });
    child.on('message', (message: LauncherMessage, handle?: Socket) => this.onMessage(message, handle));
    child.on('error', (err) => this.logger.warn({ err: err.message }, 'job launcher error'));
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (!this.closed) this.logger.warn({ code, signal, stderr }, 'job launcher exited');
      this.orphanAll();
    });
    // The launcher never keeps the agent alive; running jobs do, through their sockets.
    child.unref();
    child.channel?.unref();
    this.child = child;
    return child;
  }

  private onMessage(message: LauncherMessage, handle?: Socket): void {
    if ('stdio' in message) {
      const entry = this.pending.get(message.stdio);
      if (!entry || !handle) {
        handle?.destroy();
        return;
      }
      entry.fds[message.fd] = handle;
      const [stdin, stdout, stderr, requests] = entry.fds;
      if (!stdin || !stdout || !stderr || !requests || entry.pid === undefined || !entry.exited) return;
      entry.handedOver = true;
      entry.resolve({ pid: entry.pid, stdin, stdout, stderr, requests, exited: entry.exited });
      if (entry.exitedWith) this.pending.delete(message.stdio);
      return;
    }
    if ('spawned' in message) {
      const entry = this.pending.get(message.spawned);
      if (!entry) return;
      entry.pid = message.pid;
      entry.exited = new Promise((resolve) => (entry.exit = resolve));
      return;
    }
    if ('failed' in message) {
      this.fail(message.failed, new Error(message.error));
      return;
    }
    if ('exited' in message) {
      const entry = this.pending.get(message.exited);
      if (!entry) return;
      // A job may exit while its ends are still being handed over: it is resolved (and forgotten) once they are.
      entry.exitedWith = { code: message.code, signal: message.signal };
      entry.exit?.(entry.exitedWith);
      if (entry.handedOver) this.pending.delete(message.exited);
    }
  }

  private fail(id: number, err: Error): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    for (const fd of entry.fds) fd?.destroy();
    entry.reject(err);
  }

  /**
   * The launcher died: jobs not handed over yet fail to start (and are
   * killed, if they were started); jobs handed over are watched by their pid
   * until they are gone (nobody reports their exit code any more).
   */
  private orphanAll(): void {
    for (const [id, entry] of this.pending) {
      const { pid, exit } = entry;
      if (!entry.handedOver || pid === undefined || !exit) {
        if (pid !== undefined) killGroup(pid);
        this.fail(id, new Error('job launcher exited'));
        continue;
      }
      this.pending.delete(id);
      const timer = setInterval(() => {
        // A zombie counts as gone: its parent (init, or nobody in a container) may never reap it.
        if (processStartTime(pid) !== null) return;
        clearInterval(timer);
        exit({ code: null, signal: null });
      }, ORPHAN_POLL_MS);
    }
  }
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // gone
  }
}
