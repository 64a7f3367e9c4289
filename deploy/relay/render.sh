#!/usr/bin/env bash
# render.sh — renders the cllm relay configuration (nginx stream or HAProxy TCP mode, or the nginx
# L7 gateway for encrypted bodies) from the templates beside this script, for an operator,
# scripts/cluster-demo.sh and tests/deploy alike.
#
#   deploy/relay/render.sh --engine nginx|haproxy|nginx-l7 --replicas HOST:PORT[,HOST:PORT...] \
#       [--listen ADDR:PORT] [--runtime-dir DIR] [--out FILE] \
#       [nginx-l7: --tls-cert FILE --tls-key FILE [--log-bodies]] \
#       [--trust-replicas HOST:PORT,...  --trust-sni NAME] \
#       [--max-conns N] [--per-replica-max-conns N] [--per-addr-max-conns N] \
#       [--idle-timeout 10m] [--check-interval 1s] [--workers auto] [--stream-module auto|none|PATH]
#
# Exit codes: 0 rendered; 2 bad arguments; 3 the nginx on this host has no stream module
# (Debian: apt-get install libnginx-mod-stream).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
engine="" replicas="" listen="0.0.0.0:8443" runtime_dir="/run/cllm-relay" out="-"
trust_replicas="" trust_sni="" max_conns=4096 per_replica=0 per_addr=0
idle_timeout="10m" check_inter="1s" workers="auto" stream_module="auto" nginx_bin="${NGINX:-nginx}"
tls_cert="" tls_key="" log_bodies=0

die() { echo "render.sh: $*" >&2; exit 2; }
usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }

while [ $# -gt 0 ]; do
  if [ "$1" = --log-bodies ]; then log_bodies=1; shift; continue; fi
  [ $# -ge 2 ] || { [ "$1" = -h ] || [ "$1" = --help ] && usage; die "$1 needs a value"; }
  case "$1" in
    --engine) engine="$2" ;;
    --replicas) replicas="$2" ;;
    --listen) listen="$2" ;;
    --runtime-dir) runtime_dir="$2" ;;
    --out) out="$2" ;;
    --trust-replicas) trust_replicas="$2" ;;
    --trust-sni) trust_sni="$2" ;;
    --max-conns) max_conns="$2" ;;
    --per-replica-max-conns) per_replica="$2" ;;
    --per-addr-max-conns) per_addr="$2" ;;
    --idle-timeout) idle_timeout="$2" ;;
    --check-interval) check_inter="$2" ;;
    --workers) workers="$2" ;;
    --stream-module) stream_module="$2" ;;
    --nginx) nginx_bin="$2" ;;
    --tls-cert) tls_cert="$2" ;;
    --tls-key) tls_key="$2" ;;
    *) die "unknown option $1 (--help)" ;;
  esac
  shift 2
done

[ "$engine" = nginx ] || [ "$engine" = haproxy ] || [ "$engine" = nginx-l7 ] || die "--engine nginx|haproxy|nginx-l7 is required"
if [ "$engine" = nginx-l7 ]; then
  [ -n "$tls_cert" ] && [ -n "$tls_key" ] || die "--engine nginx-l7 needs --tls-cert FILE --tls-key FILE"
  for f in "$tls_cert" "$tls_key"; do
    [[ "$f" =~ ^/[^\;\{\}\ ]*$ ]] || die "TLS files must be absolute paths without spaces, got '$f'"
  done
fi
[ -n "$replicas" ] || die "--replicas HOST:PORT[,...] is required"
[ -z "$trust_replicas" ] || [ -n "$trust_sni" ] || die "--trust-replicas needs --trust-sni NAME"
for n in "$max_conns" "$per_replica" "$per_addr"; do
  [[ "$n" =~ ^[0-9]{1,7}$ ]] || die "connection limits are integers, got '$n'"
done
[[ "$idle_timeout" =~ ^[0-9]{1,6}(ms|s|m|h)$ ]] || die "--idle-timeout like 10m, got '$idle_timeout'"
[[ "$check_inter" =~ ^[0-9]{1,6}(ms|s|m)$ ]] || die "--check-interval like 1s, got '$check_inter'"
[[ "$workers" =~ ^(auto|[0-9]{1,3})$ ]] || die "--workers auto|N, got '$workers'"
[[ -z "$trust_sni" || "$trust_sni" =~ ^[A-Za-z0-9.-]{1,253}$ ]] || die "--trust-sni must be a DNS name"
[[ "$listen" =~ ^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):[0-9]{1,5}$ ]] || die "--listen ADDR:PORT, got '$listen'"
[[ "$runtime_dir" =~ ^/[^\;\{\}\ ]*$ ]] || die "--runtime-dir must be an absolute path without spaces"

# endpoints LIST: one validated HOST:PORT per line.
endpoints() {
  local IFS=, e
  for e in $1; do
    [[ "$e" =~ ^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):([0-9]{1,5})$ ]] || die "bad replica '$e' (HOST:PORT)"
    [ "${BASH_REMATCH[2]}" -ge 1 ] && [ "${BASH_REMATCH[2]}" -le 65535 ] || die "bad port in '$e'"
    echo "$e"
  done
}
mapfile -t servers < <(endpoints "$replicas")
[ ${#servers[@]} -gt 0 ] || die "--replicas is empty"
trust=()
[ -z "$trust_replicas" ] || mapfile -t trust < <(endpoints "$trust_replicas")
total=$(( ${#servers[@]} + ${#trust[@]} ))

# substitute TEMPLATE KEY=VALUE...: replaces @KEY@ (a VALUE may span lines).
substitute() {
  local text key value
  text="$(cat "$1")"; shift
  for kv in "$@"; do
    key="${kv%%=*}"; value="${kv#*=}"
    text="${text//@${key}@/${value}}"
  done
  printf '%s\n' "$text"
}

render_nginx() {
  local load="" lines="" trust_up="" sni="" per="" mc="" s tries
  case "$stream_module" in
    none) ;;
    auto)
      local v
      v="$("$nginx_bin" -V 2>&1)" || { echo "render.sh: cannot run $nginx_bin -V" >&2; exit 3; }
      if grep -q -- '--with-stream=dynamic' <<<"$v"; then
        for d in /usr/lib/nginx/modules /usr/lib64/nginx/modules /usr/local/nginx/modules /etc/nginx/modules; do
          [ -f "$d/ngx_stream_module.so" ] && { load="load_module $d/ngx_stream_module.so;"; break; }
        done
        [ -n "$load" ] || { echo "render.sh: nginx builds stream as a module but ngx_stream_module.so is not installed (Debian: libnginx-mod-stream)" >&2; exit 3; }
      elif ! grep -q -- '--with-stream' <<<"$v"; then
        echo "render.sh: this nginx has no stream module" >&2; exit 3
      fi ;;
    *) [ -f "$stream_module" ] || die "--stream-module $stream_module: no such file"
       load="load_module $stream_module;" ;;
  esac
  [ "$per_replica" -eq 0 ] || mc=" max_conns=$per_replica"
  for s in "${servers[@]}"; do lines+="        server $s max_fails=1 fail_timeout=10s$mc;"$'\n'; done
  if [ ${#trust[@]} -gt 0 ]; then
    trust_up=$'\n    upstream cllm_trust {\n        zone cllm_trust 64k;\n        least_conn;\n'
    for s in "${trust[@]}"; do trust_up+="        server $s max_fails=1 fail_timeout=10s$mc;"$'\n'; done
    trust_up+=$'    }\n'
    sni="        $trust_sni cllm_trust;"
  fi
  if [ "$per_addr" -gt 0 ]; then per="        limit_conn cllm_per_addr $per_addr;"
  else per="        # limit_conn cllm_per_addr 100;   # --per-addr-max-conns N (off: a relay or NAT in front shares one address)"; fi
  tries=$(( ${#servers[@]} > 3 ? 3 : ${#servers[@]} ))
  [ "$tries" -ge 2 ] || tries=2
  substitute "$here/nginx.conf.in" "LOAD_MODULE=$load" "WORKERS=$workers" "RUNTIME_DIR=$runtime_dir" \
    "WORKER_CONNECTIONS=$(( max_conns * 2 + 64 ))" "NOFILE=$(( max_conns * 2 + 128 ))" "SERVER_LINES=${lines%$'\n'}" "TRUST_UPSTREAM=$trust_up" \
    "SNI_LINES=$sni" "LISTEN=$listen" "NEXT_TRIES=$tries" "IDLE_TIMEOUT=$idle_timeout" "PER_ADDR_LIMIT=$per"
}

render_nginx-l7() {
  local lines="" s tries body_field="" body_buffer=""
  for s in "${servers[@]}"; do lines+="        server $s max_fails=1 fail_timeout=10s;"$'\n'; done
  tries=$(( ${#servers[@]} > 3 ? 3 : ${#servers[@]} ))
  [ "$tries" -ge 2 ] || tries=2
  if [ "$log_bodies" = 1 ]; then
    # --log-bodies: what a curious or compromised gateway could keep — the sealed bodies.
    body_field=" body=\"\$request_body\""
    body_buffer="        client_body_in_single_buffer on;   # --log-bodies: \$request_body holds the whole body"
  fi
  substitute "$here/nginx-l7.conf.in" "WORKERS=$workers" "RUNTIME_DIR=$runtime_dir" \
    "WORKER_CONNECTIONS=$(( max_conns * 2 + 64 ))" "NOFILE=$(( max_conns * 2 + 128 ))" "SERVER_LINES=${lines%$'\n'}" \
    "LISTEN=$listen" "TLS_CERT=$tls_cert" "TLS_KEY=$tls_key" "NEXT_TRIES=$tries" "IDLE_TIMEOUT=$idle_timeout" \
    "BODY_LOG_FIELD=$body_field" "BODY_LOG_BUFFER=$body_buffer"
}

render_haproxy() {
  local lines="" trust_be="" rules="" per="" mc="" i=0 s
  [ "$per_replica" -eq 0 ] || mc=" maxconn $per_replica"
  for s in "${servers[@]}"; do lines+="    server replica$i $s"$'\n'; i=$((i + 1)); done
  if [ ${#trust[@]} -gt 0 ]; then
    trust_be=$'\nbackend cllm_trust\n    balance leastconn\n'
    trust_be+="    default-server check inter $check_inter fall 2 rise 2$mc"$'\n'
    i=0
    for s in "${trust[@]}"; do trust_be+="    server trust$i $s"$'\n'; i=$((i + 1)); done
    rules="    use_backend cllm_trust if { req_ssl_sni -i $trust_sni }"
  fi
  if [ "$per_addr" -gt 0 ]; then
    per="    stick-table type ip size 1m expire 10m store conn_cur
    tcp-request connection track-sc0 src
    tcp-request connection reject if { sc0_conn_cur gt $per_addr }"
  else per="    # per-address limit off (--per-addr-max-conns N): a relay or NAT in front shares one address"; fi
  substitute "$here/haproxy.cfg.in" "MAX_CONNS=$max_conns" "IDLE_TIMEOUT=$idle_timeout" "LISTEN=$listen" \
    "PER_ADDR_LIMIT=$per" "SNI_RULES=$rules" "CHECK_INTER=$check_inter" "PER_REPLICA_MAXCONN=$mc" \
    "SERVER_LINES=${lines%$'\n'}" "TRUST_BACKEND=$trust_be"
}

: "$total"
if [ "$out" = - ]; then "render_$engine"
else
  tmp="$out.tmp.$$"
  "render_$engine" >"$tmp"
  mv "$tmp" "$out"
fi
