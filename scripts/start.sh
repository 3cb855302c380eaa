#!/usr/bin/env bash
# Quick start: brings the pool up locally. Installs what is missing, builds,
# starts or reuses Redis (scripts/redis.sh), starts the remote-manager (its
# token: RPS_MANAGER_TOKEN or .rps/manager.token, made here once), which makes
# the development CA and certificates and registers the two local peers, whose
# setup bundles their agents start from (scripts/manager-dev-setup.js), then
# runs every other built service with config/default.yaml, logs in
# .rps/logs/<service>.log. Ctrl-C stops them all. Without a built manager the
# certificates come from scripts/dev-certs.js and the peers from
# config/local-peer-{1,2}.yaml.
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

started=0
peer_env=()
# The manager first: it makes the certificates the other services load and
# the local peers' setup bundles.
if [ -f packages/remote-manager/dist/main.js ]; then
  run_bg remote-manager node packages/remote-manager/dist/main.js
  started=$((started + 1))
  if ! wait_ready; then
    say "the manager did not come up; stopping"
    stop_all 1
  fi
  if ! made=$(node scripts/manager-dev-setup.js "$(manager_url)"); then
    say "the manager could not make the development certificates and bundles (see above, and .rps/logs/remote-manager.log); stopping"
    stop_all 1
  fi
  mapfile -t PEER_CONFIGS <<<"$made"
  peer_env=(-u REDIS_URL)
else
  node scripts/dev-certs.js
fi

# The simulated IVIS-core the forwarder relays to (scripts/sim-ivis-core.js).
run_bg sim-ivis-core node scripts/sim-ivis-core.js serve
# RPS-host services in start order; each is packages/<dir>/dist/main.js (DESIGN.md, Commands).
# The gateway's heap flags: GATEWAY_NODE_FLAGS (packages/rps-gateway/src/gateway.constants.ts).
gateway_node_flags=(--initial-old-space-size=128)
for svc in rps-gateway peer-forwarder scheduler-sync ip-watchdog; do
  [ -f "packages/$svc/dist/main.js" ] || continue
  flags=()
  [ "$svc" = rps-gateway ] && flags=("${gateway_node_flags[@]}")
  run_bg "$svc" node "${flags[@]}" "packages/$svc/dist/main.js"
  started=$((started + 1))
done
# Two local peers, each with its own file as on a real peer: its setup bundle
# from the manager (.rps/peers/peer-N/agent.yaml, whose redis.url is used as
# it is: REDIS_URL would override it) or config/local-peer-N.yaml.
if [ -f packages/peer-agent/dist/main.js ]; then
  for i in "${!PEER_CONFIGS[@]}"; do
    run_bg "peer-$((i + 1))" env "${peer_env[@]}" RPS_CONFIG="${PEER_CONFIGS[$i]}" node packages/peer-agent/dist/main.js
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
  if [ -f packages/remote-manager/dist/cli/main.js ]; then
    say "rps CLI: RPS_MANAGER_TOKEN=\$(cat .rps/manager.token) node packages/remote-manager/dist/cli/main.js peers"
  fi
fi
say "try: node scripts/sim-ivis-core.js submit scripts/demo   ('npm stop' or Ctrl-C stops the pool)"
wait -n "${pids[@]}" || true
say "a service exited; see .rps/logs"
stop_all 1
