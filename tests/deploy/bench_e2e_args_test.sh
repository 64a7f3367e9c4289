#!/usr/bin/env bash
# bench_e2e_args_test.sh — scripts/bench-e2e.sh's --help and argument checks (no process is
# started: every case here stops before the setup). Usage: bench_e2e_args_test.sh SOURCE_DIR
set -euo pipefail
script="$1/scripts/bench-e2e.sh"
script_name=bench-e2e.sh
run_script() { CLLM_SHARED_DIR=/nonexistent bash "$script" "$@"; }
. "$(dirname "$0")/script_checks.sh"
check 0 "--users N" --help
check 0 "RA-TLS" -h
check 2 "unknown option --bogus" --bogus
check 2 "expected a positive integer, got 'x'" --users x
check 2 "expected a positive integer, got '0'" --rounds=0
check 2 "--gen-len needs a value" --gen-len
check 2 "unknown mode 'D'" --modes A,D
check 2 "not found" --users 2 --modes=B,C --model /nonexistent/model.gguf
finish
