import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A tar archive made with the system tar from a temp folder holding `files`. */
export function makeArchive(files: Record<string, string | Buffer>): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-task-'));
  try {
    const src = path.join(dir, 'dist');
    fs.mkdirSync(src);
    for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(src, name), content);
    const out = path.join(dir, 'task.tar');
    execFileSync('tar', ['-cf', out, '-C', src, '.']);
    return fs.readFileSync(out);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Every byte value, including sequences that are not UTF-8. */
export const BINARY_BLOB = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7 + 0x80) % 256));

/**
 * One job for every test, steered by `params.mode`. It reads the input line,
 * prints, and may write fd-3 requests, sleep, fail or flood stdout.
 */
export const JOB_PY = String.raw`
import hashlib, json, os, sys, time
data = json.loads(sys.stdin.readline())
params = data["params"]
if params.get("marker"):
    with open(params["marker"], "a") as f:
        f.write("ran %d\n" % os.getpid())
print("hello from job %s" % data["context"]["jobId"], flush=True)
print("input " + json.dumps({k: data[k] for k in ("certs", "es", "server", "state", "accessToken")}, sort_keys=True), flush=True)
mode = params.get("mode", "ok")
if mode == "fail":
    print("about to fail", flush=True)
    sys.stderr.write("boom on stderr\n")
    sys.exit(3)
if mode == "request":
    os.write(3, (json.dumps({"type": "store_state", "state": {"last": 123}, "id": 7}) + "\n").encode())
    print("answer:" + sys.stdin.readline().strip(), flush=True)
    os.write(3, b"this is not json\n")
    print("bad:" + sys.stdin.readline().strip(), flush=True)
    os.write(3, (json.dumps({"type": "create_signals", "signals": {"out": [{"cid": "v"}]}}) + "\n").encode())
    print("created:" + sys.stdin.readline().strip(), flush=True)
if mode == "binary":
    print("sha:" + hashlib.sha256(open("blob.bin", "rb").read()).hexdigest(), flush=True)
if mode == "sleep":
    for i in range(int(params.get("seconds", 1) * 10)):
        time.sleep(0.1)
if mode == "flood":
    for i in range(200):
        sys.stdout.write(("line %03d " % i) + "\u00e9" * 20 + "\n")
    sys.stdout.flush()
print("done", flush=True)
`;

/** The archive of the shared test task. */
export function testTaskArchive(): Buffer {
  return makeArchive({ 'job.py': JOB_PY, 'blob.bin': BINARY_BLOB });
}

/** A run request body as IVIS-core sends it (ivis-protocol.md 1.3). */
export function runBody(options: {
  runId: number;
  taskId: number;
  archive: Buffer;
  params?: Record<string, unknown>;
  subtype?: string;
  accessToken?: string | null;
  jobId?: number;
}) {
  return {
    params: options.params ?? {},
    entities: { signalSets: {}, signals: {} },
    owned: { signalSets: {} },
    type: 'python',
    ...(options.subtype ? { subtype: options.subtype } : {}),
    codeArchive: options.archive.toJSON(),
    accessToken: options.accessToken === undefined ? null : options.accessToken,
    state: null,
    jobId: options.jobId ?? 5,
    runId: options.runId,
    taskId: options.taskId,
  };
}

/** A wheel with no dependencies, made by hand, that pip installs without any index. */
export function makeWheel(dir: string): string {
  const file = path.join(dir, 'rpsdummy-0.1-py3-none-any.whl');
  const script = String.raw`
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("rpsdummy.py", "X = 1\n")
    z.writestr("rpsdummy-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: rpsdummy\nVersion: 0.1\n")
    z.writestr("rpsdummy-0.1.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr("rpsdummy-0.1.dist-info/RECORD", "")
`;
  execFileSync('python3', ['-c', script, file]);
  return file;
}
