import { makeArchive } from './tasks';

/**
 * A job that does what an IVIS user's code should not be able to do, steered
 * by `params.act`. It first proves that its own folder is writable and says
 * who it runs as and what its environment holds; then it acts, and lets any
 * error escape (the run fails with the traceback on stderr).
 */
export const HOSTILE_JOB_PY = String.raw`
import json, os, signal, subprocess, sys, time
data = json.loads(sys.stdin.readline())
p = data["params"]
act = p["act"]
with open("own.txt", "w") as f:
    f.write("mine")
with open(os.path.join(os.environ["TMPDIR"], "tmp.txt"), "w") as f:
    f.write("mine too")
print("own dir ok pid %d" % os.getpid(), flush=True)
print("uid %d gid %d groups %s" % (os.getuid(), os.getgid(), os.getgroups()), flush=True)
print("nice %d" % os.nice(0), flush=True)
print("env " + ",".join(sorted(os.environ)), flush=True)
if act == "read":
    print(open(p["path"]).read()[:100], flush=True)
elif act == "list":
    print(os.listdir(p["path"]), flush=True)
elif act == "write":
    with open(p["path"], "a") as f:
        f.write("# poisoned\n")
elif act == "kill":
    os.kill(p["pid"], signal.SIGKILL)
elif act == "memory":
    hog = bytearray(p["mb"] * 1024 * 1024)
    print(len(hog), flush=True)
elif act == "sleep":
    time.sleep(p["seconds"])
elif act == "flood":
    while True:
        sys.stdout.write("x" * 1023 + "\n")
elif act == "bigfile":
    with open("big.bin", "wb") as f:
        for i in range(p["mb"]):
            f.write(b"\0" * 1024 * 1024)
elif act == "ignore-sigint":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print("ignoring SIGINT", flush=True)
    time.sleep(120)
elif act == "child-ignores-sigint":
    code = "import signal, sys, time, os\n" \
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n" \
        "print('child ready %d' % os.getpid(), flush=True)\n" \
        "time.sleep(120)\n"
    subprocess.Popen([sys.executable, "-c", code])
    time.sleep(120)
print("done", flush=True)
`;

/** The archive of the hostile task. */
export function hostileTaskArchive(): Buffer {
  return makeArchive({ 'job.py': HOSTILE_JOB_PY });
}
