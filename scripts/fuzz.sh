#!/usr/bin/env bash
# fuzz.sh — builds the libFuzzer targets (clang, ASan+UBSan) into build-fuzz/
# and runs them.
#   scripts/fuzz.sh --smoke          every target ${CLLM_FUZZ_SECONDS:-5}s over its seed corpus (CI)
#   scripts/fuzz.sh NAME [SECONDS]   one target, longer; new inputs go to build-fuzz/corpus/NAME
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ls fuzz/*_fuzz.cc >/dev/null 2>&1; then
  echo "fuzz.sh: no fuzz targets"
  exit 0
fi
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCLLM_BUILD_FUZZ=ON -DCLLM_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz --target fuzz_all

run_one() {
  local name=$1 seconds=$2
  local bin=build-fuzz/fuzz/${name}_fuzz
  local work=build-fuzz/corpus/$name
  mkdir -p "$work"
  local seeds=()
  [ -d "fuzz/corpus/$name" ] && seeds+=("fuzz/corpus/$name")
  # New inputs go to the scratch dir (first), the committed seeds are read only.
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix=build-fuzz/$name- \
    "$work" "${seeds[@]}" 2>build-fuzz/$name.log || { tail -40 build-fuzz/$name.log; return 1; }
  echo "fuzz $name: $(grep -E 'stat::number_of_executed_units' build-fuzz/$name.log | awk '{print $2}') runs, no crash"
}

if [ "${1:-}" = "--smoke" ]; then
  for src in fuzz/*_fuzz.cc; do
    name=$(basename "$src" _fuzz.cc)
    run_one "$name" "${CLLM_FUZZ_SECONDS:-5}"
  done
else
  run_one "${1:?usage: fuzz.sh --smoke | NAME [SECONDS]}" "${2:-60}"
fi
