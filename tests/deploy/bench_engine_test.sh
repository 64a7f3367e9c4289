#!/usr/bin/env bash
# bench_engine_test.sh — scripts/bench-engine.sh: --help, argument checks, and one real run on
# the tiny preset (makes the file with `cllm model synth`, benchmarks it, prints the table and
# writes the JSON). Usage: bench_engine_test.sh SOURCE_DIR BIN_DIR. Exit 77 (skipped, loudly)
# without the shared data (the Qwen3 vocabulary the files are made with).
set -euo pipefail
script="$1/scripts/bench-engine.sh"
bin_dir="$2"
shared="${CLLM_SHARED_DIR:-$1/../shared}"
script_name=bench-engine.sh
run_script() { bash "$script" --bin-dir "$bin_dir" "$@"; }
. "$(dirname "$0")/script_checks.sh"
check 0 "--types LIST" --help
check 2 "unknown option '--bogus'" --bogus
check 2 "--preset: qwen3-0.6b, qwen3-1.7b or tiny, got 'big'" --preset big
check 2 "--threads: comma-separated positive integers, got '1,x'" --threads 1,x
check 2 "--reps: expected a non-negative integer, got '-1'" --reps -1
check 2 "--reps must be at least 1" --reps 0
check 2 "--json needs a value" --json
check 2 "no /nonexistent/cllm" --bin-dir /nonexistent

if [ ! -f "$shared/models/ggml-vocab-qwen3.gguf" ]; then
  echo "SKIPPED: the real run needs $shared/models/ggml-vocab-qwen3.gguf (set CLLM_SHARED_DIR)"
  finish
  exit 77
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CLLM_SHARED_DIR="$shared"
check 0 "| q8_0 | 1 |" --preset tiny --types q8_0 --threads 1 --reps 1 --batch 2 --dir "$work" --json "$work/out.json"
[ -s "$work/tiny-q8_0.gguf" ] || fail "the benchmark file was not kept in --dir"
python3 - "$work/out.json" <<'PY' || fail "the JSON lacks a result or the command line"
import json, sys
d = json.load(open(sys.argv[1]))
kinds = sorted(r["kind"] for r in d["runs"]["q8_0"]["results"])
assert kinds == ["batch", "pp", "tg"], kinds
assert all(r["mean"] > 0 for r in d["runs"]["q8_0"]["results"])
assert d["command"].startswith("scripts/bench-engine.sh"), d["command"]
print("ok: the JSON has the pp, tg and batch results and the command line")
PY
# A second run reuses the file (no "making" line); a failing benchmark gives exit 1 and says why.
check 0 "| q8_0 | 1 |" --preset tiny --types q8_0 --threads 1 --reps 1 --batch 0 --dir "$work"
[[ "$last_out" != *"making"* ]] || fail "the file was made again"
check 1 "more than the model's context length" --preset tiny --types q8_0 --threads 1 --reps 1 --dir "$work" --depth 999999
[[ "$last_out" == *"the q8_0 benchmark failed"* ]] || fail "no 'the q8_0 benchmark failed' line"
finish
