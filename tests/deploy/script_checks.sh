# script_checks.sh — sourced by the tests of scripts/*.sh. The test defines run_script (how the
# script under test is called) and script_name; `check WANT_RC WANT_TEXT ARGS...` runs
# `run_script ARGS...`, keeps its output in $last_out and counts failures; `finish` exits 1 if any.
failures=0
last_out=""
check() {
  local want_rc="$1" want_text="$2"; shift 2
  local rc=0
  last_out=$(run_script "$@" 2>&1) || rc=$?
  if [ "$rc" != "$want_rc" ] || [[ "$last_out" != *"$want_text"* ]]; then
    echo "FAIL: $script_name $* → exit $rc (want $want_rc), output lacks '$want_text':"
    echo "$last_out" | tail -30
    failures=$((failures + 1))
  else
    echo "ok: $script_name $* → exit $rc"
  fi
}
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
finish() { [ "$failures" = 0 ] || { echo "$failures failed"; exit 1; }; }
