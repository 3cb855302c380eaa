#!/usr/bin/env bash
# Quick start: brings the pool up locally. Installs what is missing, builds,
# starts or reuses Redis (scripts/redis.sh), generates development
# certificates (scripts/dev-certs.js) and runs every built service with
# config/default.yaml, logs in .rps/logs/<service>.log. Ctrl-C stops them all.
# Idempotent: run it again at any time.
source "$(dirname "$0")/lib.sh"
cd "$RPS_ROOT"
ensure_node_modules
build
REDIS_URL="$(bash scripts/redis.sh)"
export REDIS_URL
say "redis: $REDIS_URL"
node scripts/dev-certs.js
export RPS_CONFIG="${RPS_CONFIG:-$RPS_ROOT/config/default.yaml}"

mkdir -p "$RPS_STATE/logs"
pids=()
stop_all() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  say "stopped"
}
trap stop_all INT TERM EXIT

# Services in start order; each is packages/<dir>/dist/main.js (DESIGN.md, Commands).
SERVICES=(rps-gateway peer-forwarder scheduler-sync ip-watchdog remote-manager peer-agent)
started=0
for svc in "${SERVICES[@]}"; do
  main="packages/$svc/dist/main.js"
  [ -f "$main" ] || continue
  node "$main" >>"$RPS_STATE/logs/$svc.log" 2>&1 &
  pids+=($!)
  started=$((started + 1))
  say "started $svc (pid $!, log .rps/logs/$svc.log)"
done
if [ "$started" = 0 ]; then
  say "no service package is built yet: Redis and certificates are ready, nothing else to run"
  trap - INT TERM EXIT
  exit 0
fi
say "pool is up; Ctrl-C stops it"
wait -n "${pids[@]}" || true
die "a service exited; see .rps/logs"
