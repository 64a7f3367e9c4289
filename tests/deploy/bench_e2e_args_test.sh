#!/usr/bin/env bash
# bench_e2e_args_test.sh — scripts/bench-e2e.sh's --help and argument checks (no process is
# started: every case here stops before the setup). Usage: bench_e2e_args_test.sh SOURCE_DIR
set -euo pipefail
script="$1/scripts/bench-e2e.sh"
failures=0
check() {  # check WANT_RC WANT_TEXT ARGS...
  local want_rc="$1" want_text="$2"; shift 2
  local out rc=0
  out=$(CLLM_SHARED_DIR=/nonexistent bash "$script" "$@" 2>&1) || rc=$?
  if [ "$rc" != "$want_rc" ] || [[ "$out" != *"$want_text"* ]]; then
    echo "FAIL: bench-e2e.sh $* → exit $rc (want $want_rc), output lacks '$want_text':"
    echo "$out" | head -20
    failures=$((failures + 1))
  else
    echo "ok: bench-e2e.sh $* → exit $rc"
  fi
}
check 0 "--users N" --help
check 0 "RA-TLS" -h
check 2 "unknown option --bogus" --bogus
check 2 "expected a positive integer, got 'x'" --users x
check 2 "expected a positive integer, got '0'" --rounds=0
check 2 "--gen-len needs a value" --gen-len
check 2 "unknown mode 'D'" --modes A,D
check 2 "not found" --users 2 --modes=B,C --model /nonexistent/model.gguf
[ "$failures" = 0 ] || { echo "$failures failed"; exit 1; }
