# What `npm start` and `npm stop` share about a running local pool: its pid
# files under .rps/ and the readiness wait. Source it after lib.sh.
#   .rps/pool.pid          pid of the `npm start` that runs the pool
#   .rps/pool.services     "<name> <pid>" per service it started
#   .rps/pool.redis        present when that start started the private redis-server

POOL_PID="$RPS_STATE/pool.pid"
POOL_SERVICES="$RPS_STATE/pool.services"
POOL_REDIS="$RPS_STATE/pool.redis"
MANAGER_TOKEN_FILE="$RPS_STATE/manager.token"

# Exits 0 (and says where) when an earlier `npm start` still runs the pool.
pool_running() {
  [ -f "$POOL_PID" ] && kill -0 "$(cat "$POOL_PID")" 2>/dev/null || return 1
  say "the pool is already up (npm start, pid $(cat "$POOL_PID"), in $RPS_ROOT; logs in .rps/logs; 'npm stop' stops it)"
}

# The local peers' agent config files, peer-1 first: config/local-peer-N.yaml,
# or the setup bundles the manager made (start.sh replaces them).
PEER_CONFIGS=("$RPS_ROOT/config/local-peer-1.yaml" "$RPS_ROOT/config/local-peer-2.yaml")

# Prints "name url" for every admin listener of the pool's services, from
# their config files (RPS_CONFIG for the RPS host, PEER_CONFIGS).
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
      ["remote-manager", url(cfg.manager?.listen ?? { host: "127.0.0.1", port: 9332 })],
    ];
    peers.forEach((f, i) => rows.push([`peer-${i + 1}`, url((parse(fs.readFileSync(f, "utf8")) ?? {}).agent?.admin)]));
    for (const [name, u] of rows) if (u) console.log(name, u);
  ' "$RPS_CONFIG" "${PEER_CONFIGS[@]}"
}

# The manager's token for development (manager.token): RPS_MANAGER_TOKEN when
# set, else .rps/manager.token, made once (random, mode 0600; never committed).
# Exports RPS_MANAGER_TOKEN and sets MANAGER_TOKEN_SOURCE for the messages.
ensure_manager_token() {
  if [ -n "${RPS_MANAGER_TOKEN:-}" ]; then
    MANAGER_TOKEN_SOURCE="RPS_MANAGER_TOKEN"
  else
    if [ ! -s "$MANAGER_TOKEN_FILE" ]; then
      mkdir -p "$RPS_STATE"
      (umask 077 && node -e 'process.stdout.write(require("node:crypto").randomBytes(24).toString("base64url"))' >"$MANAGER_TOKEN_FILE")
      say "manager token written to .rps/manager.token"
    fi
    RPS_MANAGER_TOKEN=$(cat "$MANAGER_TOKEN_FILE")
    MANAGER_TOKEN_SOURCE=".rps/manager.token"
  fi
  export RPS_MANAGER_TOKEN MANAGER_TOKEN_SOURCE
}

# The manager's base URL (manager.listen of RPS_CONFIG): http://host:port
manager_url() {
  node -e '
    const fs = require("node:fs");
    const { parse } = require(require.resolve("yaml", { paths: [process.cwd() + "/packages/common"] }));
    const l = (parse(fs.readFileSync(process.argv[1], "utf8")) ?? {}).manager?.listen ?? {};
    console.log(`http://${l.host ?? "127.0.0.1"}:${l.port ?? 9332}`);
  ' "$RPS_CONFIG"
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
