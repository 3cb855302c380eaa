#!/usr/bin/env bash
# Runs docker/Dockerfile's build stage as a plain script, so CI catches a
# broken build step without a Docker engine: every `COPY src... dest` and
# `RUN` of the first stage is performed, in order, in a temporary copy
# (WORKDIR becomes that folder; ENV is exported), then the runtime stage's
# `COPY --from=build` sources must exist, and every service's dist/main.js
# must load its modules from the pruned tree. The npm cache is reused
# (npm_config_prefer_offline), so this costs one `npm ci` from the cache and
# one build. Usage: bash scripts/image-build-steps.sh [Dockerfile]
source "$(dirname "$0")/lib.sh"
dockerfile="${1:-$RPS_ROOT/docker/Dockerfile}"
[ -f "$dockerfile" ] || die "no Dockerfile at $dockerfile"

work=$(mktemp -d "${TMPDIR:-/tmp}/rps-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
export npm_config_prefer_offline=true npm_config_update_notifier=false

# The Dockerfile's instructions, one a line (continuations joined, comments dropped).
mapfile -t steps < <(sed -e '/^[[:space:]]*#/d' "$dockerfile" | sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' | sed -e '/^[[:space:]]*$/d')

# Copies sources from the build context (the repository) to dest in $work,
# leaving out what .dockerignore leaves out of the context.
copy_in() { # dest src...
  local dest=$1; shift
  local target="$work/${dest#/app}"
  case "$dest" in */) mkdir -p "$target" ;; esac
  for src in "$@"; do
    [ -e "$RPS_ROOT/$src" ] || die "Dockerfile COPY: $src is not in the build context"
    if [ -d "$RPS_ROOT/$src" ]; then
      mkdir -p "$target"
      tar -C "$RPS_ROOT/$src" --exclude=node_modules --exclude=dist --exclude='*.tsbuildinfo' -cf - . | tar -C "$target" -xf -
    else
      cp "$RPS_ROOT/$src" "$target"
    fi
  done
}

stage=0
for step in "${steps[@]}"; do
  read -r instr rest <<<"$step"
  case "${instr^^}" in
    FROM) stage=$((stage + 1)); continue ;;
  esac
  if [ "$stage" = 1 ]; then
    case "${instr^^}" in
      WORKDIR) ;; # the temporary folder plays /app
      ENV) eval "export $rest" ;;
      COPY)
        [[ "$rest" == --* ]] && die "build stage COPY with options is not supported here: $step"
        read -r -a args <<<"$rest"
        copy_in "${args[-1]}" "${args[@]:0:${#args[@]}-1}" ;;
      RUN)
        say "image build step: RUN $rest"
        (cd "$work" && bash -euo pipefail -c "$rest") || die "Dockerfile step failed: RUN $rest" ;;
      *) die "unsupported build-stage instruction (extend scripts/image-build-steps.sh): $step" ;;
    esac
  elif [ "${instr^^}" = COPY ] && [[ "$rest" == --from=build* ]]; then
    read -r -a args <<<"$rest"
    for src in "${args[@]:1:${#args[@]}-2}"; do
      [ -e "$work/${src#/app/}" ] || die "runtime stage copies $src, which the build stage did not produce"
    done
  fi
done
[ "$stage" -ge 1 ] || die "no FROM in $dockerfile"

# Every service loads its modules from the pruned tree: with a config file
# that does not exist it must stop at the config check (exit 2), never on a
# missing module.
for main in "$work"/packages/*/dist/main.js; do
  svc=$(basename "$(dirname "$(dirname "$main")")")
  set +e
  out=$(cd "$work" && RPS_CONFIG="$work/no-such-config.yaml" NODE_ENV=production timeout 20 node "$main" 2>&1)
  rc=$?
  set -e
  if [ "$rc" != 2 ] || grep -q "Cannot find module\|ERR_MODULE_NOT_FOUND" <<<"$out"; then
    printf '%s\n' "$out" | tail -20 >&2
    die "$svc does not start from the image's pruned tree (exit $rc)"
  fi
done
say "image build steps: ok ($(ls -d "$work"/packages/*/dist/main.js | wc -l) services load from the pruned tree)"
