#!/usr/bin/env bash
# relay_config_test.sh — deploy/relay/render.sh and the configurations it renders, with the real
# nginx and HAProxy: refused bad input, `nginx -t` / `haproxy -c`, TLS passed through untouched
# (each backend's own certificate reaches the client), all backends used, a dead backend skipped
# with no failed connection, SNI routing to the second pool. The backends are `openssl s_server`
# (TLS 1.3, one certificate each); relay_test.cc does the same with attested cllm-server replicas.
# Prints SKIPPED and exits 77 when nginx (with its stream module) or haproxy is missing.
set -uo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
render="$src/deploy/relay/render.sh"
PATH="$PATH:/usr/sbin:/sbin"
for p in nginx haproxy openssl; do
  command -v "$p" >/dev/null || { echo "SKIPPED: $p is not installed (scripts/install-deps.sh)"; exit 77; }
done
dir="$(mktemp -d /tmp/cllm_relay_cfg.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fail=0 out=""
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; echo "$out" | sed 's/^/     /'; fail=1; fi; }
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# Bad input is refused before anything is written.
check "bad replica refused" "! '$render' --engine nginx --replicas 'a;b:1' --out '$dir/x' 2>/dev/null && [ ! -e '$dir/x' ]"
check "bad port refused" "! '$render' --engine haproxy --replicas 127.0.0.1:70000 2>/dev/null"
check "bad limit refused" "! '$render' --engine nginx --replicas 127.0.0.1:1 --max-conns 1e9 2>/dev/null"

ports=()
for i in 0 1 2; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/k$i.pem" -out "$dir/c$i.pem" \
    -subj "/CN=backend$i" -days 1 2>/dev/null
  ports+=("$(port)")
  openssl s_server -quiet -accept "${ports[$i]}" -cert "$dir/c$i.pem" -key "$dir/k$i.pem" -tls1_3 -www \
    >/dev/null 2>&1 &
  pids+=($!)
done
list="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}"
trust="127.0.0.1:${ports[2]}"
np="$(port)" hp="$(port)"
"$render" --engine nginx --replicas "$list" --trust-replicas "$trust" --trust-sni trust.example \
  --listen "127.0.0.1:$np" --runtime-dir "$dir" --workers 2 --max-conns 128 --out "$dir/nginx.conf"
rc=$?
[ $rc -eq 3 ] && { echo "SKIPPED: nginx has no stream module (Debian: libnginx-mod-stream)"; exit 77; }
check "nginx config rendered" "[ $rc -eq 0 ]"
check "nginx -t" "nginx -t -q -p '$dir' -c '$dir/nginx.conf' -e '$dir/error.log'"
"$render" --engine haproxy --replicas "$list" --trust-replicas "$trust" --trust-sni trust.example \
  --listen "127.0.0.1:$hp" --max-conns 128 --check-interval 1s --out "$dir/haproxy.cfg"
check "haproxy -c" "haproxy -c -q -f '$dir/haproxy.cfg'"
check "no key, certificate or PROXY protocol in the relay configs" \
  "! cat '$dir/nginx.conf' '$dir/haproxy.cfg' | grep -v '^[[:space:]]*#' | grep -Eq 'ssl_certificate|proxy_ssl |crt |send-proxy|proxy_protocol on'"

nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;' & pids+=($!)
haproxy -f "$dir/haproxy.cfg" -db >"$dir/haproxy.log" 2>&1 & pids+=($!)
sleep 1

# subjects PORT SNI N: the certificate subjects N connections through the relay receive.
subjects() {
  for _ in $(seq "$3"); do
    echo | timeout 5 openssl s_client -connect "127.0.0.1:$1" -servername "$2" -tls1_3 2>/dev/null \
      | grep -m1 '^subject' || echo FAILED
  done | sort | uniq -c
}
for engine in nginx haproxy; do
  p=$np; [ $engine = haproxy ] && p=$hp
  out="$(subjects $p replicas.example 6)"
  check "$engine: both backends reached, their own certificates passed through" \
    "grep -q 'CN = backend0' <<<'$out' && grep -q 'CN = backend1' <<<'$out' && ! grep -q 'FAILED\|backend2' <<<'$out'"
  out="$(subjects $p trust.example 2)"
  check "$engine: SNI trust.example goes to the trust pool" "grep -q '2 subject=CN = backend2' <<<'$out'"
done
kill "${pids[1]}"; sleep 0.5
for engine in nginx haproxy; do
  p=$np; [ $engine = haproxy ] && p=$hp
  out="$(subjects $p replicas.example 6)"
  check "$engine: backend1 dead, every new connection served by backend0" "grep -q '6 subject=CN = backend0' <<<'$out'"
done
check "nginx access log has metadata only" "grep -q 'upstream=127.0.0.1:' '$dir/access.log'"
[ $fail -eq 0 ] && echo "relay_config_test: all checks passed"
exit $fail
