#!/usr/bin/env bash
# run.sh — THE main command (README): installs what is missing, builds, and
# runs the main job: the whole confidential-inference flow on the simulated TEE.
#
#   1. build; crypto self-check; the simulated TEE's platform key
#   2. start cllm-trust (attestation service, token issuer, key broker) and
#      register the reference values: platform key, server binary, model
#   3. seal the model (AES-256-GCM) with a fresh key that only cllm-trust keeps
#   4. start cllm-server on the sealed model: it attests to cllm-trust, gets a
#      token, obtains the model key, unseals the model in locked memory and
#      serves over RA-TLS with the token in its certificate
#   5. the default client policy refuses it (sim is not hardware), and so
#      does a policy that pins no model digest; the policy written by
#      `cllm policy pin` verifies the evidence locally; the token path
#      verifies it via cllm-trust
#   6. chat through the attested channel
#   7. check cllm-trust's audit log; verify real AMD SEV-SNP evidence offline
#      (without a policy: "not satisfied: nothing pinned"; then pinned)
# Everything it creates lives in build/demo/ (server log: build/demo/server.log).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CLLM_SHARED_DIR="${CLLM_SHARED_DIR:-$root/../shared}"
models="$CLLM_SHARED_DIR/models"
evidence="$CLLM_SHARED_DIR/testdata/attestation"

bash scripts/install-deps.sh
echo "== building (first build takes a few minutes on 2 cores)"
bash scripts/build.sh
cllm=build/bin/cllm
server=build/bin/cllm-server

echo; $cllm --version
echo; $cllm selfcheck

model="$models/stories260K-f16.gguf"
if [ ! -f "$model" ]; then
  echo "run.sh: the demo model $model is missing; set CLLM_SHARED_DIR to the shared/ directory" >&2
  exit 1
fi

demo=build/demo
rm -rf "$demo" && mkdir -p "$demo"
trust_bin=build/bin/cllm-trust
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
wait_ready() {  # wait_ready FILE NAME
  for _ in $(seq 150); do [ -s "$1" ] && return 0; sleep 0.1; done
  echo "$2 did not start" >&2; exit 1
}
field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p" "$1"; }
# cllm-server and cllm-trust lock all their memory or refuse to start; an
# ordinary user's RLIMIT_MEMLOCK is too small, so the demo then opts out. The
# server says so in its evidence, so the demo's client policy and the model
# key's release policy then accept unlocked memory too (the same flag).
unlocked=()
if [ "$(id -u)" != 0 ] && [ "$(ulimit -l)" != unlimited ]; then
  unlocked=(--allow-unlocked-memory)
  echo "run.sh: memory cannot be locked here (ulimit -l $(ulimit -l)); the demo passes --allow-unlocked-memory" >&2
fi

echo; echo "== 1. the simulated TEE's platform key (development only; a real CVM has hardware keys)"
$cllm attest sim-keygen -o "$demo/sim-platform.key" >/dev/null
echo "   $demo/sim-platform.key (+ .pub)"

echo; echo "== 2. cllm-trust: attestation service, token issuer, key broker"
$trust_bin init --state-dir "$demo/trust" "${unlocked[@]}" | sed 's/^/   /'
$trust_bin serve --state-dir "$demo/trust" --listen 127.0.0.1:0 --ready-file "$demo/trust.ready" --log-level warn \
  "${unlocked[@]}" &
pids+=($!)
wait_ready "$demo/trust.ready" cllm-trust
export CLLM_TRUST_URL="https://127.0.0.1:$(field "$demo/trust.ready" port)"
export CLLM_TRUST_CA="$demo/trust/trust-ca.pem" CLLM_TRUST_ADMIN_TOKEN_FILE="$demo/trust/admin.token"
echo "   $CLLM_TRUST_URL"

# Reference values come from what we built and the model we hold, never from
# the server: the sim platform key, the server binary, the model digest
# (`cllm policy pin` computes the digests exactly as cllm-server does).
$cllm policy pin -o "$demo/policy.json" --sim-platform-key "$demo/sim-platform.key.pub" \
  --model "$model" --binary "$server" "${unlocked[@]}" | sed 's/^/   /'
echo "   reference values (policy \"default\"):"
$cllm trust policy set default "$demo/policy.json" | sed 's/^/   /'

echo; echo "== 3. sealing the model; its key goes to cllm-trust only"
$cllm model seal "$model" -o "$demo/model.cllm" --register --key-id stories-v1 --allow-simulated "${unlocked[@]}" |
  sed 's/^/   /'

# One API key for the demo user; the server's file keeps only its SHA-256.
api_key=$($cllm apikey add --user demo --keys-file "$demo/api-keys.json" 2>/dev/null)

echo; echo "== 4. cllm-server on the sealed model (SIMULATED TEE): attest → token → key → unseal → serve"
$server -m "$demo/model.cllm" --tee sim --sim-key "$demo/sim-platform.key" --listen 127.0.0.1:0 \
  --trust "$CLLM_TRUST_URL" --trust-ca "$CLLM_TRUST_CA" \
  --api-keys "$demo/api-keys.json" --ready-file "$demo/ready.json" --log-level info "${unlocked[@]}" \
  2>"$demo/server.log" &
pids+=($!)
wait_ready "$demo/ready.json" cllm-server
sed 's/^/   server: /' "$demo/server.log"
url="https://127.0.0.1:$(field "$demo/ready.json" port)"
echo "   $url  model $(field "$demo/ready.json" model_name)"

echo; echo "== 5a. the default client policy refuses a simulated TEE (fail closed)"
if $cllm attest "$url"; then echo "unexpected: the default policy accepted a simulated TEE" >&2; exit 1; fi
echo; echo "== 5a'. a policy accepting the sim key but pinning no model digest is refused too (not pinned)"
$cllm policy pin -o "$demo/unpinned.json" --sim-platform-key "$demo/sim-platform.key.pub" "${unlocked[@]}" >/dev/null
if $cllm attest "$url" --policy "$demo/unpinned.json"; then
  echo "unexpected: a policy pinning no model digest was accepted" >&2; exit 1
fi
echo; echo "== 5b. local verification: evidence, binding and digests against $demo/policy.json"
$cllm attest "$url" --policy "$demo/policy.json"
echo; echo "== 5c. token verification: the server's cllm-trust token, bound to its TLS key"
$cllm attest "$url" --policy "$demo/policy.json" --via-token --trust "$CLLM_TRUST_URL" --trust-ca "$CLLM_TRUST_CA"

echo; echo "== 6. attested chat (prompt and reply travel only inside the verified TLS channel)"
CLLM_API_KEY="$api_key" $cllm chat "$url" --policy "$demo/policy.json" -p "Once upon a time" -n 64 --temperature 0

echo; echo "== 7a. cllm-trust's audit log (hash chain: attestations, key releases, admin changes)"
$cllm trust audit verify | sed 's/^/   /'

echo; echo "== 7b. verifying real AMD SEV-SNP evidence (Genoa, collected from hardware)"
snp="$evidence/snp"
if [ -f "$snp/trustee_genoa_v3_report.bin" ]; then
  # The VCEK is valid 2025-05-27..2032-05-27; verify at a fixed time inside it.
  snp_args=(--evidence "$snp/trustee_genoa_v3_report.bin" --platform snp
    --certs "$snp/trustee_genoa_v3_vcek.der" --certs "$snp/amd_genoa_ask_ark_vcek_chain.pem"
    --at 2026-01-01T00:00:00Z)
  # Without a policy: verified and explained, but "not satisfied: nothing
  # pinned" (exit 3): genuine hardware alone does not say which image runs.
  rc=0; $cllm attest verify "${snp_args[@]}" || rc=$?
  if [ "$rc" != 3 ]; then echo "unexpected: attest verify without a policy exited $rc (want 3)" >&2; exit 1; fi
  # Pinned to the image's published launch measurement (recorded for this
  # sample in $snp/PROVENANCE.md; for a deployment: your image's reference value).
  # SNP has no TCB status source (NotEvaluated): pin a floor per TCB component
  # too (here this sample's REPORTED_TCB; for a deployment: AMD's bulletins).
  echo; $cllm policy pin -o "$demo/snp-policy.json" \
    --snp-measurement 6a6519d757e68c2e939c9dbbbc1828498e8de35d2766dd05f1a2cca5059d0cf4ae62a36d75c837974dd50b315506e73e \
    --min-tcb snp.bootloader=10 --min-tcb snp.tee=0 --min-tcb snp.snp=23 --min-tcb snp.microcode=25
  echo; $cllm attest verify "${snp_args[@]}" --policy "$demo/snp-policy.json"
else
  echo "(skipped: SNP samples not found under $snp)"
fi
echo; echo "done. Everything is in $demo/ (cllm-trust state in $demo/trust/)."
