#!/usr/bin/env bash
# Redis bootstrap for the quick start. Prints the REDIS_URL to use on stdout.
#   1. REDIS_URL set: use it.
#   2. A Redis answering on 127.0.0.1:6379: reuse it.
#   3. Otherwise a private redis-server (AOF on, data under .rps/redis) on a
#      free port, reused on later runs while it is alive.
# `scripts/redis.sh stop` stops the private server.
source "$(dirname "$0")/lib.sh"

ping_redis() { # host port -> 0 when it answers PONG
  node -e '
    const s = require("net").connect(+process.argv[2], process.argv[1]);
    s.setTimeout(500, () => process.exit(1));
    s.on("connect", () => s.write("PING\r\n"));
    s.on("data", (d) => process.exit(String(d).startsWith("+PONG") ? 0 : 1));
    s.on("error", () => process.exit(1));' "$1" "$2"
}

dir="$RPS_STATE/redis"
portfile="$dir/port"
pidfile="$dir/redis.pid"

if [ "${1:-}" = stop ]; then
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")" && say "stopped private redis-server"
  fi
  exit 0
fi

if [ -n "${REDIS_URL:-}" ]; then
  echo "$REDIS_URL"; exit 0
fi
if ping_redis 127.0.0.1 6379; then
  say "reusing the Redis on 127.0.0.1:6379"
  echo "redis://127.0.0.1:6379/0"; exit 0
fi
if [ -f "$portfile" ] && [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null \
   && ping_redis 127.0.0.1 "$(cat "$portfile")"; then
  say "reusing the private redis-server on port $(cat "$portfile")"
  echo "redis://127.0.0.1:$(cat "$portfile")/0"; exit 0
fi

ensure_redis_server
mkdir -p "$dir"
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
redis-server "$RPS_ROOT/config/redis.conf" --port "$port" --bind 127.0.0.1 --dir "$dir" \
  --daemonize yes --pidfile "$pidfile" --logfile "$dir/redis.log" >/dev/null
for _ in $(seq 1 100); do
  ping_redis 127.0.0.1 "$port" && break
  sleep 0.1
done
ping_redis 127.0.0.1 "$port" || die "private redis-server did not start; see $dir/redis.log"
echo "$port" > "$portfile"
say "started a private redis-server on port $port (AOF on, data in .rps/redis)"
echo "redis://127.0.0.1:$port/0"
