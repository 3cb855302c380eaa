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

# Makes sure Debian's redis-server binary exists: installs it as root with apt,
# otherwise stops with the one command a person should run.
ensure_redis_server() {
  command -v redis-server >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing redis-server (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends redis-server >/dev/null
    # Debian's package may start a system instance; the project never relies on it.
    command -v redis-server >/dev/null || die "redis-server still missing after apt-get install"
  else
    die "redis-server is missing: run 'sudo apt-get install -y redis-server' (or set REDIS_URL to a running Redis)"
  fi
}

build() {
  say "building (tsc -b)"
  (cd "$RPS_ROOT" && npm run --silent build >/dev/null)
}
