#!/usr/bin/env bash
# The one test command (README quick start, .ci/run): installs what is
# missing, builds, checks formatting, lints, typechecks and runs every unit
# and integration test. Integration tests start their own redis-server.
source "$(dirname "$0")/lib.sh"
cd "$RPS_ROOT"
ensure_node_modules
# redis-server for every integration test; apache2 plays IVIS-core's TLS front
# (renegotiation for a client certificate) in the forwarder's tests; chromium
# runs the manager's dashboard test (playwright-core drives /usr/bin/chromium).
ensure_debian_packages redis-server:redis-server apache2:apache2 chromium:chromium
ensure_job_user   # the builtin executor's isolation tests run jobs as rps-job
# ip (netns, veth) for the multi-host test, which runs as root only (test/e2e/multi-host-e2e.test.ts).
if [ "$(id -u)" = 0 ]; then ensure_debian_packages ip:iproute2; fi
build
say "format check";  npx --no-install prettier --check . >/dev/null
say "lint";          npx --no-install eslint . --max-warnings 0
say "typecheck";     npx --no-install tsc -p tsconfig.check.json
# Compose files against the Compose Specification (no Docker engine here).
say "compose files"; npx --no-install dclint --max-warnings 0 docker/docker-compose.yml docker/peer-compose.yml
# docker/Dockerfile's build stage as a plain script (RPS_SKIP_IMAGE_CHECK=1 skips it locally).
if [ "${RPS_SKIP_IMAGE_CHECK:-}" != 1 ]; then
  say "image build steps"; bash scripts/image-build-steps.sh >/dev/null
fi
say "tests (unit + integration)"
npx --no-install jest --ci "$@"
# The current LTS line too: unit tests and the end-to-end integration tests
# of the real processes (the whole suite on 24 doubles CI time; RPS_NODE24=all
# runs all of it, RPS_NODE24=0 skips the pass).
case "${RPS_NODE24:-subset}" in
  0) ;;
  all) say "Node 24: every test"; bash scripts/node24.sh npx --no-install jest --ci ;;
  *) say "Node 24: unit tests + end-to-end tests"
     bash scripts/node24.sh npx --no-install jest --ci --selectProjects unit integration -- \
       'src/.*\.test\.ts$' 'test/.*e2e.*\.test\.ts$' ;;
esac
