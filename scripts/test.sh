#!/usr/bin/env bash
# test.sh — THE test command (README, .ci/run). Installs what is missing,
# builds, and runs every test:
#   1. an ASan+UBSan build running the suites that parse untrusted input:
#      base, crypto, attestation, channel, trust, and the engine's GGUF/kernel/tokenizer suites;
#   2. short libFuzzer runs of every fuzz target over its seed corpus (clang);
#   3. the full suite on the normal build (with bench/'s microbenchmarks built) — its ctest
#      summary ends the output.
# Options: --quick skips 1 and 2. Tests read ../shared through CLLM_SHARED_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CLLM_SHARED_DIR="${CLLM_SHARED_DIR:-$root/../shared}"
jobs=$(nproc 2>/dev/null || echo 2)

quick=0
[ "${1:-}" = "--quick" ] && quick=1

bash scripts/install-deps.sh
if [ ! -d "$CLLM_SHARED_DIR" ]; then
  echo "test.sh: WARNING: shared test data not found at $CLLM_SHARED_DIR — data-driven tests will be SKIPPED" >&2
fi

if [ "$quick" = 0 ]; then
  echo "== sanitizer build (ASan + UBSan): parsers of untrusted input"
  bash scripts/build.sh --sanitize
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
  ctest --test-dir build-asan -L '^(base|crypto|jinja|attestation|channel|net|trust|server|client|e2e|security)$' --output-on-failure -j "$jobs" --timeout 600
  if ctest --test-dir build-asan -L '^engine$' -N | grep -q 'Total Tests: [1-9]'; then
    ctest --test-dir build-asan -L '^engine$' -R '^(Gguf|TypeTraits|Kernel|SimdKernel|RowKernel|Packed|ModelPack|KvCache|Types/KvCacheLayout|Tokenizer|Chat|Scheduler|Sampler|Isas/SamplingCandidates|LogSoftmaxTop)' \
      --output-on-failure -j "$jobs" --timeout 600
  fi
  unset ASAN_OPTIONS UBSAN_OPTIONS

  echo "== fuzz smoke runs"
  bash scripts/fuzz.sh --smoke
fi

echo "== full test suite"
# The microbenchmarks (bench/) are built too, so they compile (-Werror under CI) wherever the tests do.
bash scripts/build.sh -DCLLM_BUILD_BENCH=ON
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 900
