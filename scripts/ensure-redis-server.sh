#!/usr/bin/env bash
# Installs Debian's redis-server if it is missing (tests start their own servers from it).
source "$(dirname "$0")/lib.sh"
ensure_redis_server
