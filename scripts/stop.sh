#!/usr/bin/env bash
# `npm stop`: stops the pool an earlier `npm start` runs (its services, the
# simulated IVIS-core and, if that start started it, the private redis-server).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pool.sh"
cd "$RPS_ROOT"
stopped=0
if [ -f "$POOL_PID" ] && kill -0 "$(cat "$POOL_PID")" 2>/dev/null; then
  pid=$(cat "$POOL_PID")
  kill -TERM "$pid"
  # start.sh's trap stops its services and exits; bound: the services' own
  # shutdown timeouts (about 10 s) plus margin.
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  stopped=1
fi
# Whatever is left of the services (a start killed without its trap).
if [ -f "$POOL_SERVICES" ]; then
  while read -r name spid; do
    kill -0 "$spid" 2>/dev/null && kill -TERM "$spid" && say "stopped $name (pid $spid)" && stopped=1
  done <"$POOL_SERVICES"
fi
if [ -f "$POOL_REDIS" ]; then
  bash scripts/redis.sh stop
  stopped=1
fi
rm -f "$POOL_PID" "$POOL_SERVICES" "$POOL_REDIS"
[ "$stopped" = 1 ] && say "pool stopped" || say "no pool was running"
