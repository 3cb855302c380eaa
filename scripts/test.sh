#!/usr/bin/env bash
# The one test command (README quick start, .ci/run): installs what is
# missing, builds, checks formatting, lints, typechecks and runs every unit
# and integration test. Integration tests start their own redis-server.
source "$(dirname "$0")/lib.sh"
cd "$RPS_ROOT"
ensure_node_modules
# redis-server for every integration test; apache2 plays IVIS-core's TLS front
# (renegotiation for a client certificate) in the forwarder's tests.
ensure_debian_packages redis-server:redis-server apache2:apache2
ensure_job_user   # the builtin executor's isolation tests run jobs as rps-job
build
say "format check";  npx --no-install prettier --check . >/dev/null
say "lint";          npx --no-install eslint . --max-warnings 0
say "typecheck";     npx --no-install tsc -p tsconfig.check.json
say "tests (unit + integration)"
npx --no-install jest --ci "$@"
