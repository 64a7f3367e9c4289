#!/usr/bin/env bash
# build.sh — configure and build cllm into build/ (or $CLLM_BUILD_DIR).
#   scripts/build.sh [--sanitize] [cmake -D... options]
# Warnings are errors under CI (CI=true). Output: build/bin/{cllm,...}.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${CLLM_BUILD_DIR:-build}"
extra=()
if [ "${1:-}" = "--sanitize" ]; then
  shift
  build_dir="${CLLM_BUILD_DIR:-build-asan}"
  extra+=(-DCLLM_SANITIZE=ON)
fi
werror=OFF
[ "${CI:-}" = "true" ] && werror=ON

cmake -S . -B "$build_dir" -G Ninja -DCLLM_WERROR="$werror" "${extra[@]}" "$@" >/dev/null
cmake --build "$build_dir"
