# A minimal IVIS job for the local pool: reads the run input IVIS sends on
# stdin line 1, prints progress, and ends successfully.
import json
import sys
import time

data = json.loads(sys.stdin.readline())
print("job", data["context"]["jobId"], "started with params", data["params"], flush=True)
for step in range(3):
    print("step", step + 1, flush=True)
    time.sleep(0.5)
print("done", flush=True)
