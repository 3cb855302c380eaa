# Shared helpers for the scripts in this folder. Source it; do not run it.
set -euo pipefail

RPS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RPS_STATE="$RPS_ROOT/.rps"

say() { printf '\033[1m[rps]\033[0m %s\n' "$*" >&2; }
die() { printf '[rps] error: %s\n' "$*" >&2; exit 1; }

# Installs node_modules from package-lock.json when missing or out of date.
ensure_node_modules() {
  command -v node >/dev/null || die "node is not installed (Node.js 20.19+ is needed)"
  command -v npm >/dev/null || die "npm is not installed"
  local stamp="$RPS_ROOT/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$RPS_ROOT/package-lock.json" -nt "$stamp" ]; then
    say "installing npm packages (npm ci)"
    (cd "$RPS_ROOT" && npm ci --no-audit --no-fund)
  fi
}

# Installs Debian packages whose commands are missing, as root with apt;
# otherwise stops with the one command a person should run.
# Usage: ensure_debian_packages command:package ...
ensure_debian_packages() {
  local missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "missing Debian packages: run 'sudo apt-get install -y ${missing[*]}'"
  fi
}

# Debian's redis-server: tests start their own servers from it, the quick start may.
ensure_redis_server() {
  ensure_debian_packages redis-server:redis-server
}

# The unprivileged user built-in jobs run as (agent.executor.runAs, default
# rps-job): a system account with no login shell and no home. Created only
# when run as root; a plain user's agent needs agent.executor.allowSameUser.
# Usage: ensure_job_user [name]
ensure_job_user() {
  local name=${1:-rps-job}
  getent passwd "$name" >/dev/null && return 0
  if [ "$(id -u)" != 0 ]; then
    say "job user $name missing (not root: agents here need agent.executor.allowSameUser: true)"
    return 0
  fi
  say "creating the job user $name"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    --user-group "$name"
}

build() {
  say "building (tsc -b)"
  local log
  log=$(mktemp)
  if ! (cd "$RPS_ROOT" && npm run --silent build >"$log" 2>&1); then
    cat "$log" >&2
    rm -f "$log"
    die "build failed"
  fi
  rm -f "$log"
}
