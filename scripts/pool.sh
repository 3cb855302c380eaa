# What `npm start` and `npm stop` share about a running local pool: its pid
# files under .rps/ and the readiness wait. Source it after lib.sh.
#   .rps/pool.pid          pid of the `npm start` that runs the pool
#   .rps/pool.services     "<name> <pid>" per service it started
#   .rps/pool.redis        present when that start started the private redis-server

POOL_PID="$RPS_STATE/pool.pid"
POOL_SERVICES="$RPS_STATE/pool.services"
POOL_REDIS="$RPS_STATE/pool.redis"

# Exits 0 (and says where) when an earlier `npm start` still runs the pool.
pool_running() {
  [ -f "$POOL_PID" ] && kill -0 "$(cat "$POOL_PID")" 2>/dev/null || return 1
  say "the pool is already up (npm start, pid $(cat "$POOL_PID"), in $RPS_ROOT; logs in .rps/logs; 'npm stop' stops it)"
}

# Prints "name url" for every admin listener of the pool's services, from
# their config files (RPS_CONFIG for the RPS host, config/local-peer-N.yaml).
admin_urls() {
  node -e '
    const fs = require("node:fs");
    const { parse } = require(require.resolve("yaml", { paths: [process.cwd() + "/packages/common"] }));
    const [host, ...peers] = process.argv.slice(1);
    const cfg = parse(fs.readFileSync(host, "utf8")) ?? {};
    const url = (l) => l && `http://${l.host}:${l.port}/readyz`;
    const rows = [
      ["rps-gateway", url(cfg.gateway?.admin)],
      ["peer-forwarder", url(cfg.forwarder?.admin)],
      ["scheduler-sync", url(cfg.scheduler?.admin)],
      ["ip-watchdog", url(cfg.watchdog?.admin)],
    ];
    peers.forEach((f, i) => rows.push([`peer-${i + 1}`, url((parse(fs.readFileSync(f, "utf8")) ?? {}).agent?.admin)]));
    for (const [name, u] of rows) if (u) console.log(name, u);
  ' "$RPS_CONFIG" "$RPS_ROOT/config/local-peer-1.yaml" "$RPS_ROOT/config/local-peer-2.yaml"
}

# 0 when url answers 200 within a second.
ready() {
  node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(1000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$1"
}

# Waits until every started service answers its /readyz (the simulated
# IVIS-core: its port accepts). Bound: RPS_START_TIMEOUT seconds (default 60,
# a cold start of every service on a loaded 2-core machine takes ~10 s).
# On failure names each service that is not ready, with the tail of its log.
wait_ready() {
  local deadline=$((SECONDS + ${RPS_START_TIMEOUT:-60})) pending name url pid
  declare -A urls=()
  while read -r name url; do urls[$name]=$url; done < <(admin_urls)
  while :; do
    pending=()
    while read -r name pid; do
      if ! kill -0 "$pid" 2>/dev/null; then
        pending+=("$name(exited)")
      elif [ "$name" = sim-ivis-core ]; then
        node -e 'require("net").connect(18443, "127.0.0.1").on("connect", () => process.exit(0)).on("error", () => process.exit(1))' || pending+=("$name")
      elif [ -n "${urls[$name]:-}" ]; then
        ready "${urls[$name]}" || pending+=("$name")
      fi
    done <"$POOL_SERVICES"
    [ ${#pending[@]} -eq 0 ] && return 0
    if [ "$SECONDS" -ge "$deadline" ] || [[ "${pending[*]}" == *"(exited)"* ]]; then
      for name in "${pending[@]}"; do
        if [[ "$name" == *"(exited)" ]]; then
          name=${name%(exited)}
          say "$name exited while starting; last lines of .rps/logs/$name.log:"
        else
          if [ "$SECONDS" -ge "$deadline" ]; then
            say "$name did not answer ${urls[$name]:-on its port} within ${RPS_START_TIMEOUT:-60} s; last lines of .rps/logs/$name.log:"
          else
            say "$name was not ready yet when another service failed; last lines of .rps/logs/$name.log:"
          fi
        fi
        tail -n 15 "$RPS_STATE/logs/$name.log" >&2 || true
      done
      return 1
    fi
    sleep 0.5
  done
}

# Pid of the private redis-server of scripts/redis.sh when it runs, else nothing.
private_redis_pid() {
  local f="$RPS_STATE/redis/redis.pid"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f" || true
}
