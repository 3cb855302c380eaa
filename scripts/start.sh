#!/usr/bin/env bash
# Quick start: brings the pool up locally. Installs what is missing, builds,
# starts or reuses Redis (scripts/redis.sh), generates development
# certificates (scripts/dev-certs.js) and runs every built service with
# config/default.yaml, logs in .rps/logs/<service>.log. Ctrl-C stops them all.
# The manager (admin API, dashboard) gets its token from RPS_MANAGER_TOKEN or
# .rps/manager.token (made here once).
# Idempotent: run it again at any time.
source "$(dirname "$0")/lib.sh"
cd "$RPS_ROOT"
source scripts/pool.sh # pid files, readiness wait (npm stop)
pool_running && exit 0
ensure_node_modules
ensure_job_user   # the local peers' jobs (agent.executor.runAs)
build
redis_before=$(private_redis_pid)
REDIS_URL="$(bash scripts/redis.sh)"
# Mark a private redis-server this start started; a running one keeps its mark
# (an earlier start that failed left it, and `npm stop` must still stop it).
if [ -z "$redis_before" ]; then
  if [ -n "$(private_redis_pid)" ]; then touch "$POOL_REDIS"; else rm -f "$POOL_REDIS"; fi
fi
export REDIS_URL
say "redis: $REDIS_URL"
node scripts/dev-certs.js
export RPS_CONFIG="${RPS_CONFIG:-$RPS_ROOT/config/default.yaml}"
ensure_manager_token

mkdir -p "$RPS_STATE/logs"
echo $$ >"$POOL_PID"
: >"$POOL_SERVICES"
pids=()
stop_all() { # exit code
  trap - INT TERM
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  say "stopped"
  exit "$1"
}
trap 'stop_all 0' INT TERM

run_bg() { # name, then the command; logs to .rps/logs/<name>.log
  local name=$1; shift
  "$@" >>"$RPS_STATE/logs/$name.log" 2>&1 &
  pids+=($!)
  echo "$name $!" >>"$POOL_SERVICES"
  say "started $name (pid $!, log .rps/logs/$name.log)"
}

# The simulated IVIS-core the forwarder relays to (scripts/sim-ivis-core.js).
run_bg sim-ivis-core node scripts/sim-ivis-core.js serve
# RPS-host services in start order; each is packages/<dir>/dist/main.js (DESIGN.md, Commands).
started=0
for svc in rps-gateway peer-forwarder scheduler-sync ip-watchdog remote-manager; do
  [ -f "packages/$svc/dist/main.js" ] || continue
  run_bg "$svc" node "packages/$svc/dist/main.js"
  started=$((started + 1))
done
# Two local peers, each with its own file as on a real peer.
if [ -f packages/peer-agent/dist/main.js ]; then
  for n in 1 2; do
    run_bg "peer-$n" env RPS_CONFIG="$RPS_ROOT/config/local-peer-$n.yaml" node packages/peer-agent/dist/main.js
    started=$((started + 1))
  done
fi
if [ "$started" = 0 ]; then
  say "no service package is built yet: Redis, certificates and the simulated IVIS-core are ready"
fi
if ! wait_ready; then
  say "the pool did not come up; stopping what started"
  stop_all 1
fi
say "pool is up: every service answers /readyz; the gateway listens on https://127.0.0.1:10327"
if grep -q '^remote-manager ' "$POOL_SERVICES"; then
  say "dashboard: $(manager_url)/  (token: $MANAGER_TOKEN_SOURCE)"
fi
say "try: node scripts/sim-ivis-core.js submit scripts/demo   ('npm stop' or Ctrl-C stops the pool)"
wait -n "${pids[@]}" || true
say "a service exited; see .rps/logs"
stop_all 1
