#!/usr/bin/env bash
# bench-engine.sh — the engine's figures on this CPU in one command: the table that issue #17 and
# docs/performance.md compare with llama.cpp's (../shared/docs/BASELINES.md, per CPU).
#
# Makes the benchmark files if they are missing (`cllm model synth --seed 1`: byte-identical on
# every machine, the files BASELINES.md measured llama.cpp on), then runs, per file,
#   cllm bench model -m FILE -p 512 -n 128 -t 1,2 -r 3 --batch 8 --json
# and prints the CPU (`lscpu`), the commit, every figure and the batched-decode ratio b8 ÷ pp512
# (issue #17 asks for ≥ 0.65 at 8 sequences). Copy the table into docs/performance.md with this command line.
#
# Options (defaults in brackets):
#   --preset P          qwen3-0.6b, qwen3-1.7b or tiny (a seconds-long self-test) [qwen3-0.6b]
#   --types LIST        file types, comma-separated [q4_k_m,q8_0]
#   --threads LIST      thread counts [1,2]          --reps N     repetitions per test [3]
#   --batch N           sequences of the batched-decode test (0: none) [8]
#   --depth N           KV-cache positions before each test, as llama-bench -d [0]
#   --profile           also print the per-op profile of every test (one more run each)
#   --dir DIR           where the benchmark files are kept [build/bench-models]
#   --bin-dir DIR       binaries [build/bin]          --json FILE  write every result here
# The default run takes ~6 minutes on 2 vCPUs (plus ~80 s to make the Q4_K_M file once).
# Exit code 1 when a benchmark failed, 2 on bad options.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
export CLLM_SHARED_DIR="${CLLM_SHARED_DIR:-$here/../shared}"
cmdline="scripts/bench-engine.sh$(printf ' %q' "$@")"

preset="qwen3-0.6b" types="q4_k_m,q8_0" threads="1,2" reps=3 batch=8 depth=0 profile=0
dir="$here/build/bench-models" bin_dir="$here/build/bin" json_out=""
die() { echo "bench-engine.sh: $*" >&2; exit 2; }
need_val() { [ $# -ge 2 ] || die "$1 needs a value (see --help)"; }
count() {  # count FLAG VALUE: a non-negative integer
  [[ "$2" =~ ^[0-9]+$ ]] || die "$1: expected a non-negative integer, got '$2'"
}
while [ $# -gt 0 ]; do
  case "$1" in
    --preset) need_val "$@"; preset="$2"; shift 2 ;;
    --types) need_val "$@"; types="$2"; shift 2 ;;
    --threads) need_val "$@"; threads="$2"; shift 2 ;;
    --reps) need_val "$@"; count "$1" "$2"; reps="$2"; shift 2 ;;
    --batch) need_val "$@"; count "$1" "$2"; batch="$2"; shift 2 ;;
    --depth) need_val "$@"; count "$1" "$2"; depth="$2"; shift 2 ;;
    --profile) profile=1; shift ;;
    --dir) need_val "$@"; dir="$2"; shift 2 ;;
    --bin-dir) need_val "$@"; bin_dir="$2"; shift 2 ;;
    --json) need_val "$@"; json_out="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
case "$preset" in qwen3-0.6b|qwen3-1.7b|tiny) ;; *) die "--preset: qwen3-0.6b, qwen3-1.7b or tiny, got '$preset'" ;; esac
[[ "$threads" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--threads: comma-separated positive integers, got '$threads'"
[ "$reps" -ge 1 ] || die "--reps must be at least 1"
cllm="$bin_dir/cllm"
[ -x "$cllm" ] || die "no $cllm: build first (scripts/build.sh)"
vocab="$CLLM_SHARED_DIR/models/ggml-vocab-qwen3.gguf"
[ -f "$vocab" ] || die "no $vocab (set CLLM_SHARED_DIR to the shared data directory)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$dir"

echo "# $cmdline"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
{ lscpu | grep -E '^(Model name|Vendor ID|CPU family|Model|CPU\(s\)|L2 cache):' || true; } | sed 's/^/# /'
flags="$(grep -m1 '^flags' /proc/cpuinfo || true)"
echo "# avx512_vnni: $([[ "$flags" == *avx512_vnni* ]] && echo yes || echo no)," \
     "amx: $([[ "$flags" == *amx_tile* ]] && echo yes || echo no), load average: $(cut -d' ' -f1-3 /proc/loadavg)"

failed=0
IFS=, read -r -a type_list <<< "$types"
for type in "${type_list[@]}"; do
  file="$dir/$preset-$type.gguf"
  if [ ! -s "$file" ]; then
    echo "# making $file (cllm model synth --seed 1) ..."
    "$cllm" model synth --preset "$preset" --type "$type" --seed 1 --vocab "$vocab" -o "$file.tmp" > "$work/synth.log" 2>&1 ||
      { cat "$work/synth.log" >&2; die "cllm model synth --type $type failed"; }
    mv "$file.tmp" "$file"
  fi
  args=(bench model -m "$file" -p 512 -n 128 -t "$threads" -r "$reps" -d "$depth" --json)
  [ "$batch" -gt 0 ] && args+=(--batch "$batch")
  [ "$profile" = 1 ] && args+=(--profile)
  echo "# cllm ${args[*]}"
  if ! "$cllm" "${args[@]}" > "$work/$type.json" 2> "$work/$type.err"; then
    cat "$work/$type.err" >&2
    echo "bench-engine.sh: the $type benchmark failed" >&2
    failed=1
    rm -f "$work/$type.json"
  fi
done

python3 - "$work" "$json_out" "$cmdline" "$batch" "${type_list[@]}" <<'EOF'
import json, os, sys
work, json_out, cmdline, batch, types = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
runs = {}
for t in types:
    path = os.path.join(work, t + ".json")
    if os.path.exists(path):
        with open(path) as f:
            runs[t] = json.load(f)
print()
print("| file | threads | pp512 t/s | tg128 t/s | b%d tg128 t/s | b%d ÷ pp512 |" % (batch, batch))
print("|---|---:|---:|---:|---:|---:|")
for t, run in runs.items():
    by = {}
    for r in run["results"]:
        by.setdefault(r["threads"], {})[r["kind"]] = r
    for threads in sorted(by):
        k = by[threads]
        fig = lambda kind: "%.1f ± %.1f" % (k[kind]["mean"], k[kind]["sd"]) if kind in k else "—"
        ratio = "%.2f" % (k["batch"]["mean"] / k["pp"]["mean"]) if "batch" in k and "pp" in k else "—"
        print("| %s | %d | %s | %s | %s | %s |" % (t, threads, fig("pp"), fig("tg"), fig("batch"), ratio))
    for p in run.get("profiles", []):
        total = p["ms_per_pass"]
        print("\nprofile %s, %s (batch %d), %d thread(s): %.3f ms per pass" % (t, p["kind"], p["batch"], p["threads"], total))
        for op, ms in sorted(p["op_ms_per_pass"].items(), key=lambda kv: -kv[1]):
            print("  %-16s %9.3f ms  %5.1f%%" % (op, ms, 100.0 * ms / total if total > 0 else 0.0))
print("\nllama.cpp's figures for this CPU: ../shared/docs/BASELINES.md (compare as ratios).")
if json_out:
    with open(json_out, "w") as f:
        json.dump({"command": cmdline, "runs": runs}, f, indent=2)
EOF
exit "$failed"
