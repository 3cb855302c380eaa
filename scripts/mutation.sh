#!/usr/bin/env bash
# npm run test:mutation [-- MODULE... [STRYKER OPTIONS]]: StrykerJS over the
# modules of stryker.config.mjs, one module after the other (each is its own
# Stryker run: own tests, own incremental file, own report in
# reports/mutation/). Slow, so not part of `npm test`; docs/testing.md.
#   npm run test:mutation                          every module
#   npm run test:mutation -- forwarder             one module
#   npm run test:mutation -- forwarder --mutate packages/peer-forwarder/src/services/cidr.matcher.ts
#   npm run test:mutation -- --force               ignore the incremental files (a full run)
#   npm run test:mutation -- --mutate <glob>       one run over every module's tests (incremental file all.incremental.json)
# Integration tests among a module's tests start their own redis-server.
source "$(dirname "$0")/lib.sh"
cd "$RPS_ROOT"
ensure_node_modules
ensure_debian_packages redis-server:redis-server
ALL_MODULES=(run-state gateway forwarder scheduler agent)
modules=()
while [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; do
  modules+=("$1")
  shift
done
if [ ${#modules[@]} -eq 0 ] && [[ " $* " == *" --mutate "* ]]; then
  # --mutate without a module: one run with every module's tests.
  say "mutation testing: $*"
  exec npx --no-install stryker run "$@"
fi
[ ${#modules[@]} -gt 0 ] || modules=("${ALL_MODULES[@]}")
# Property tests run for every mutant they cover: a tenth of their cases
# (run-body.validator.test.ts reads it; npm test runs them all).
export RPS_PROPERTY_RUNS="${RPS_PROPERTY_RUNS:-300}"
failed=()
for module in "${modules[@]}"; do
  say "mutation testing: $module"
  MUTATION_MODULE="$module" npx --no-install stryker run "$@" || failed+=("$module")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "mutation testing did not complete for: ${failed[*]}" >&2
  exit 1
fi
