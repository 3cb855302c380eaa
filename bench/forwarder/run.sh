#!/usr/bin/env bash
# Relay benchmark: requests/s (wrk, 16 connections) and added latency
# (p50/p99 at 1 connection, minus the direct path) for the peer-forwarder,
# Apache httpd configured as the original relay, and nginx with an upstream
# keep-alive pool, all in front of the same Node HTTPS upstream that requires
# a client certificate. Everything runs on loopback; about 4 minutes.
#   bash bench/forwarder/run.sh            # defaults: 5 rounds of 6 s per path, interleaved
#   BENCH_SECONDS=5 bash bench/forwarder/run.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

need=()
[ -x /usr/sbin/apache2 ] || need+=(apache2)
[ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[bench] installing ${need[*]} (Debian packages)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "[bench] missing ${need[*]}: run 'sudo apt-get install -y ${need[*]}'" >&2
    exit 1
  fi
fi

echo "[bench] building common, peer-forwarder and the bench driver" >&2
npx tsc -b packages/common packages/peer-forwarder
npx tsc -p bench/forwarder
exec node bench/forwarder/dist/bench.js "$@"
