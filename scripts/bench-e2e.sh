#!/usr/bin/env bash
# bench-e2e.sh — the cost of encrypted bodies (issue #15, docs/protocol.md "Encrypted bodies")
# against plain RA-TLS, in tokens/s and time to first token, for both suites.
#
# On loopback, simulated TEE, real processes: cllm-trust with one fleet key per suite (released
# only to attested sim replicas running the model), ONE cllm-server replica with --e2e, and three
# local `cllm proxy` processes in front of that same replica:
#   A  cllm proxy                          RA-TLS to the replica's TLS port (the baseline)
#   B  cllm proxy --e2e --suite x25519     HPKE-sealed bodies to its --e2e-listen port
#   C  cllm proxy --e2e --suite gmt        the same with SM2/SM3/SM4
# Every mode has the same client → proxy → replica hops, so what differs is the protection of
# the proxy → replica leg: RA-TLS records (A) or sealed bodies over plain loopback HTTP (B, C).
# `cllm bench serve` (streamed chats, seeded sampling: the same work in every mode) runs against
# A, B, C interleaved for --rounds rounds after one unmeasured warm-up run each. Printed: per
# mode the median over rounds of tokens/s, TTFT p50 and p90, the spread between rounds, the CPU
# time the replica and the proxy spent per token (far less disturbed by other load than tokens/s),
# and the ratio to A; --json FILE writes the same with every run, the CPU model and the command line.
#
# Options (defaults in brackets):
#   --model FILE        model the replica serves [$CLLM_SHARED_DIR/models/stories260K-f32.gguf]
#   --users N           concurrent users [4]          --requests R   requests per user [32]
#   --prompt-len L      prompt words [16]             --gen-len G    tokens per request [64]
#   --rounds K          measured rounds of A B C [3]  --modes LIST   subset/order, e.g. "A,C" [A,B,C]
#   --server-arg ARG    extra cllm-server flag (repeatable), e.g. --server-arg=--threads=2
#   --json FILE         write the summary JSON here   --bin-dir DIR  binaries [build/bin]
#   --keep              keep the work directory (logs, every run's JSON)
# The default run (stories260K) takes about a minute on 2 vCPUs. Exit code 1 when a run failed.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
export CLLM_SHARED_DIR="${CLLM_SHARED_DIR:-$here/../shared}"
cmdline="scripts/bench-e2e.sh$(printf ' %q' "$@")"

model="" users=4 requests=32 prompt_len=16 gen_len=64 rounds=3 modes="A,B,C" json_out="" keep=0
bin_dir="$here/build/bin"
server_args=()
die() { echo "bench-e2e.sh: $*" >&2; exit 2; }
need_val() { [ $# -ge 2 ] || die "$1 needs a value (see --help)"; }
posint() {  # posint FLAG VALUE
  [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1: expected a positive integer, got '$2'"
}
while [ $# -gt 0 ]; do
  case "$1" in
    --*=*) a="$1"; shift; set -- "${a%%=*}" "${a#*=}" "$@"; continue ;;
  esac
  case "$1" in
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    --model) need_val "$@"; model="$2"; shift 2 ;;
    --users) need_val "$@"; posint "$1" "$2"; users="$2"; shift 2 ;;
    --requests) need_val "$@"; posint "$1" "$2"; requests="$2"; shift 2 ;;
    --prompt-len) need_val "$@"; posint "$1" "$2"; prompt_len="$2"; shift 2 ;;
    --gen-len) need_val "$@"; posint "$1" "$2"; gen_len="$2"; shift 2 ;;
    --rounds) need_val "$@"; posint "$1" "$2"; rounds="$2"; shift 2 ;;
    --modes) need_val "$@"; modes="$2"; shift 2 ;;
    --server-arg) need_val "$@"; server_args+=("$2"); shift 2 ;;
    --json) need_val "$@"; json_out="$2"; shift 2 ;;
    --bin-dir) need_val "$@"; bin_dir="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
mode_list=()
IFS=', ' read -r -a _m <<<"$modes"
for m in "${_m[@]}"; do
  case "$m" in A|B|C) mode_list+=("$m") ;; "") ;; *) die "--modes: unknown mode '$m' (A, B, C)" ;; esac
done
[ ${#mode_list[@]} -gt 0 ] || die "--modes: no mode given"
model="${model:-$CLLM_SHARED_DIR/models/stories260K-f32.gguf}"
[ -f "$model" ] || die "model $model not found (set CLLM_SHARED_DIR or pass --model)"
cllm="$bin_dir/cllm" server="$bin_dir/cllm-server" trust_bin="$bin_dir/cllm-trust"
for b in "$cllm" "$server" "$trust_bin"; do
  [ -x "$b" ] || die "$b not found: build it (cmake --build build --target cllm cllm-server cllm-trust)"
done
command -v python3 >/dev/null || die "python3 is needed for the summary"

work=$(mktemp -d "${TMPDIR:-/tmp}/cllm-bench-e2e.XXXXXX")
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$keep" = 1 ] || [ "$rc" != 0 ]; then
    echo "bench-e2e.sh: work directory kept: $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "bench-e2e.sh: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
wait_file() {  # wait_file FILE WHAT PID
  for _ in $(seq 600); do
    [ -s "$1" ] && return 0
    kill -0 "$3" 2>/dev/null || fail "$2 exited (log: $work/$2.log)"
    sleep 0.1
  done
  fail "$2 did not become ready (log: $work/$2.log)"
}
wait_port() {  # wait_port PORT WHAT PID
  for _ in $(seq 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || fail "$2 exited (log: $work/$2.log)"
    sleep 0.1
  done
  fail "$2 is not listening on $1 (log: $work/$2.log)"
}

echo "== setup in $work"
# Reference values: the simulated platform key of the fleet, the model it serves.
"$cllm" attest sim-keygen -o "$work/platform.key" >/dev/null
model_digest=$(sha256sum "$model" | cut -d' ' -f1)
# A server run with --allow-unlocked-memory, a smaller --stream-pad, a
# --debug-listen or --metrics-keys says so in its evidence: then the trust and
# client policies (and the release policy, but for the padding) accept it —
# the benchmark's choice.
unlocked=false pad=${CLLM_STREAM_PAD:-512} prev=
debug_listener=false metrics_keys=${CLLM_METRICS_KEYS:-}
[ -n "${CLLM_DEBUG_LISTEN:-}" ] && debug_listener=true
for a in "${server_args[@]}"; do
  [ "$a" = --allow-unlocked-memory ] && unlocked=true
  case "$a" in --debug-listen|--debug-listen=*) debug_listener=true ;; esac
  case "$a" in --metrics-keys=*) metrics_keys=${a#--metrics-keys=} ;; esac
  [ "$prev" = --metrics-keys ] && metrics_keys=$a
  case "$a" in --stream-pad=*) pad=${a#--stream-pad=} ;; esac
  [ "$prev" = --stream-pad ] && pad=$a
  prev=$a
done
case "$pad" in ''|*[!0-9]*) fail "--stream-pad: expected a number of bytes, got \"$pad\"" ;; esac
python3 - "$work" "$model_digest" "$unlocked" "$pad" "$debug_listener" "$metrics_keys" <<'EOF'
import json, sys
work, digest, unlocked, pad = sys.argv[1], sys.argv[2], sys.argv[3] == "true", int(sys.argv[4])
pub = open(f"{work}/platform.key.pub").read()
sim = {"platform_keys": [pub]}
release_extra = {"allow_unlocked_memory": True} if unlocked else {}
if sys.argv[5] == "true":
    release_extra["allow_debug_listener"] = True
if sys.argv[6]:  # the metrics keys file: its readers, key by key
    release_extra["metrics_readers"] = [k["sha256"].lower() for k in json.load(open(sys.argv[6]))["keys"]]
extra = dict(release_extra, **({"min_stream_pad": pad} if pad < 512 else {}))
json.dump({"version": 1, "platforms": ["sim"], "sim": sim, **extra}, open(f"{work}/trust-policy.json", "w"))
json.dump({"version": 1, "platforms": ["sim"], "sim": sim, "model_digests": [digest], **extra},
          open(f"{work}/client.json", "w"))
json.dump({"model_digests": [digest], "platforms": ["sim"], "allow_simulated": True, **release_extra},
          open(f"{work}/release.json", "w"))
EOF
api_key=$("$cllm" apikey add --user bench --keys-file "$work/api-keys.json" 2>/dev/null)

# cllm-trust: the attestation policy and one fleet key per suite.
"$trust_bin" init --state-dir "$work/state" >"$work/trust-init.log" 2>&1 || fail "cllm-trust init (see $work/trust-init.log)"
"$trust_bin" serve --state-dir "$work/state" --listen 127.0.0.1:0 --ready-file "$work/trust.ready" \
  --log-level warn >"$work/trust.log" 2>&1 &
pids+=($!)
wait_file "$work/trust.ready" trust $!
trust_url="https://127.0.0.1:$(json_field "$work/trust.ready" port)"
trust_ca="$work/state/trust-ca.pem"
admin=(--trust "$trust_url" --trust-ca "$trust_ca" --admin-token-file "$work/state/admin.token")
"$cllm" trust policy set default "$work/trust-policy.json" "${admin[@]}" >"$work/admin.log" 2>&1 ||
  fail "cllm trust policy set (see $work/admin.log)"
for suite in x25519 gmt; do
  "$cllm" trust fleet-key create --suite "$suite" --release-policy-file "$work/release.json" "${admin[@]}" \
    >>"$work/admin.log" 2>&1 || fail "cllm trust fleet-key create --suite $suite (see $work/admin.log)"
done

# One replica: RA-TLS on --listen, sealed bodies on --e2e-listen.
"$server" -m "$model" --tee sim --sim-key "$work/platform.key" --listen 127.0.0.1:0 \
  --trust "$trust_url" --trust-ca "$trust_ca" --e2e --e2e-listen 127.0.0.1:0 \
  --api-keys "$work/api-keys.json" --ready-file "$work/server.ready" --log-level warn "${server_args[@]}" \
  >"$work/server.log" 2>&1 &
pids+=($!)
server_pid=$!
wait_file "$work/server.ready" server $!
tls_port=$(json_field "$work/server.ready" port)
e2e_port=$(json_field "$work/server.ready" e2e_port)

# The three proxies.
declare -A proxy_port proxy_pid
start_proxy() {  # start_proxy MODE ARGS...
  local mode="$1"; shift
  local port; port=$(free_port)
  "$cllm" proxy --listen "127.0.0.1:$port" --policy "$work/client.json" "$@" >"$work/proxy-$mode.log" 2>&1 &
  pids+=($!)
  proxy_pid[$mode]=$!
  wait_port "$port" "proxy-$mode" $!
  proxy_port[$mode]=$port
}
start_proxy A --upstream "https://127.0.0.1:$tls_port"
start_proxy B --e2e --suite x25519 --upstream "http://127.0.0.1:$e2e_port" --trust "$trust_url" --trust-ca "$trust_ca"
start_proxy C --e2e --suite gmt --upstream "http://127.0.0.1:$e2e_port" --trust "$trust_url" --trust-ca "$trust_ca"
for m in A B C; do echo "   $m: http://127.0.0.1:${proxy_port[$m]}  ($(head -1 "$work/proxy-$m.log"))"; done

# cpu_ticks PID: user + system CPU time of a process so far, in clock ticks.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
ticks_per_s=$(getconf CLK_TCK)

bench() {  # bench MODE TAG
  local out="$work/run-$1-$2.json"
  # The CPU time the replica and this mode's proxy spend on the run: a cost
  # per token that other load on the machine disturbs far less than tokens/s.
  local s0 p0; s0=$(cpu_ticks "$server_pid"); p0=$(cpu_ticks "${proxy_pid[$1]}")
  CLLM_API_KEY="$api_key" "$cllm" bench serve --url "http://127.0.0.1:${proxy_port[$1]}" --users "$users" \
    --requests "$requests" --prompt-len "$prompt_len" --gen-len "$gen_len" --json >"$out" 2>"$work/run-$1-$2.err" ||
    fail "bench against $1 ($2) failed: $(head -c 600 "$out" "$work/run-$1-$2.err")"
  echo "$(( $(cpu_ticks "$server_pid") - s0 )) $(( $(cpu_ticks "${proxy_pid[$1]}") - p0 )) $ticks_per_s" \
    >"$work/run-$1-$2.cpu"
  python3 - "$out" "$1" "$2" "$work/run-$1-$2.cpu" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
server, proxy, hz = (int(x) for x in open(sys.argv[4]).read().split())
us = (server + proxy) / hz * 1e6 / max(r['tokens'], 1)
print(f"   {sys.argv[2]} {sys.argv[3]:>7}: {r['tokens_per_second']:8.1f} tokens/s  TTFT p50 {r['ttft_ms']['p50']:7.1f} ms"
      f"  p90 {r['ttft_ms']['p90']:7.1f} ms  CPU {us:6.1f} us/token  ({r['ok']} ok, {r['tokens']} tokens, {r['seconds']:.1f} s)")
EOF
}

echo "== warm-up (not counted)"
for m in "${mode_list[@]}"; do bench "$m" warmup; done
echo "== $rounds rounds of ${mode_list[*]}: $users users x $requests requests, prompt $prompt_len words, $gen_len tokens"
for r in $(seq "$rounds"); do
  for m in "${mode_list[@]}"; do bench "$m" "round$r"; done
done

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
python3 - "$work" "$rounds" "$cmdline" "${cpu:-unknown}" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "$model" "${json_out:-}" "${mode_list[@]}" <<'EOF'
import json, statistics, sys, datetime
work, rounds, cmdline, cpu, ncpu, load, model, json_out = sys.argv[1:9]
modes = sys.argv[9:]
names = {"A": "RA-TLS (baseline)", "B": "e2e x25519", "C": "e2e gmt"}
med = statistics.median
summary = {"command": cmdline, "cpu": cpu, "cpus": int(ncpu), "loadavg_at_end": load, "model": model,
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "modes": {}}
for m in modes:
    runs = [json.load(open(f"{work}/run-{m}-round{r}.json")) for r in range(1, int(rounds) + 1)]
    cpu_us = []  # replica + proxy CPU time per token
    for r in range(1, int(rounds) + 1):
        server, proxy, hz = (int(x) for x in open(f"{work}/run-{m}-round{r}.cpu").read().split())
        cpu_us.append((server + proxy) / hz * 1e6 / max(runs[r - 1]["tokens"], 1))
    tps = [r["tokens_per_second"] for r in runs]
    t50 = [r["ttft_ms"]["p50"] for r in runs]
    t90 = [r["ttft_ms"]["p90"] for r in runs]
    itl = [r["itl_ms"]["p50"] for r in runs]
    spread = lambda xs: (max(xs) - min(xs)) / med(xs) * 100 if med(xs) else 0.0
    summary["modes"][m] = {
        "name": names[m], "tokens_per_second": med(tps), "ttft_p50_ms": med(t50), "ttft_p90_ms": med(t90),
        "itl_p50_ms": med(itl), "cpu_us_per_token": med(cpu_us), "cpu_us_per_token_rounds": cpu_us,
        "tokens_per_second_spread_pct": spread(tps), "ttft_p50_spread_pct": spread(t50),
        "rounds": [{"tokens_per_second": r["tokens_per_second"], "ttft_ms": r["ttft_ms"], "itl_ms": r["itl_ms"],
                    "ok": r["ok"], "tokens": r["tokens"], "seconds": r["seconds"]} for r in runs],
        "users": runs[0]["users"], "requests_per_user": runs[0]["requests_per_user"],
        "prompt_len": runs[0]["prompt_len"], "gen_len": runs[0]["gen_len"]}
base = summary["modes"].get("A")
for m, s in summary["modes"].items():
    if base:
        s["tokens_per_second_vs_A"] = s["tokens_per_second"] / base["tokens_per_second"]
        s["ttft_p50_vs_A"] = s["ttft_p50_ms"] / base["ttft_p50_ms"] if base["ttft_p50_ms"] else None
        s["ttft_p90_vs_A"] = s["ttft_p90_ms"] / base["ttft_p90_ms"] if base["ttft_p90_ms"] else None
        s["cpu_us_per_token_vs_A"] = s["cpu_us_per_token"] / base["cpu_us_per_token"] if base["cpu_us_per_token"] else None
print(f"\n{cmdline}\nCPU: {cpu} ({ncpu} CPUs), load average at the end {load}; medians over {rounds} rounds")
hdr = (f"{'mode':<20}{'tokens/s':>10}{'vs A':>9}{'spread':>8}{'TTFT p50':>11}{'vs A':>9}{'TTFT p90':>11}{'vs A':>9}"
       f"{'spread':>8}{'CPU us/tok':>12}{'vs A':>9}")
print(hdr); print("-" * len(hdr))
pct = lambda v: f"{(v - 1) * 100:+.1f}%" if v is not None else "-"
for m, s in summary["modes"].items():
    print(f"{m + ' ' + s['name']:<20}{s['tokens_per_second']:>10.1f}{pct(s.get('tokens_per_second_vs_A')):>9}"
          f"{s['tokens_per_second_spread_pct']:>7.1f}%{s['ttft_p50_ms']:>9.1f}ms{pct(s.get('ttft_p50_vs_A')):>9}"
          f"{s['ttft_p90_ms']:>9.1f}ms{pct(s.get('ttft_p90_vs_A')):>9}{s['ttft_p50_spread_pct']:>7.1f}%"
          f"{s['cpu_us_per_token']:>12.1f}{pct(s.get('cpu_us_per_token_vs_A')):>9}")
print("(spread: (max - min) / median between rounds of the same mode; vs A: the median against A's;\n"
      " CPU us/tok: user + system time of the replica and the mode's proxy per generated token)")
if json_out:
    with open(json_out, "w") as f:
        json.dump(summary, f, indent=2)
    print(f"summary JSON: {json_out}")
EOF
