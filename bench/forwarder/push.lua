-- A status push as a peer sends it (ivis-protocol.md 2.3): small JSON POST.
wrk.method = "POST"
wrk.path = "/rest/remote/status"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"runId":42,"status":{"status":3,"started_at":"2026-11-23T10:00:00.000Z"},"output":"step 1 done\\n"}'
