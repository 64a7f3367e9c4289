#!/usr/bin/env bash
# run.sh — THE main command (README): installs what is missing, builds, and
# runs the main job: an end-to-end attested chat on the simulated TEE.
#
#   1. build; crypto self-check
#   2. start cllm-server with a model on the SIMULATED TEE (RA-TLS listener)
#   3. show that the default client policy refuses it (sim is not hardware)
#   4. verify it with a policy that pins the sim platform key, the model digest
#      and the server binary digest: `cllm attest https://…`
#   5. chat with it through the attested channel: `cllm chat https://…`
#   6. verify real AMD SEV-SNP hardware evidence offline
# Everything it creates lives in build/demo/.
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
mkdir -p "$demo"
echo; echo "== 1. the simulated TEE's platform key (development only; a real CVM has hardware keys)"
[ -f "$demo/sim-platform.key" ] || $cllm attest sim-keygen -o "$demo/sim-platform.key" >/dev/null
echo "   $demo/sim-platform.key (+ .pub)"

# One API key for the demo user; the server stores only its SHA-256.
api_key="sk-demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '{"keys":[{"user":"demo","sha256":"%s"}]}\n' "$(printf '%s' "$api_key" | sha256sum | cut -d' ' -f1)" \
  >"$demo/api-keys.json"

echo; echo "== 2. starting cllm-server on the SIMULATED TEE"
rm -f "$demo/ready.json"
$server -m "$model" --tee sim --sim-key "$demo/sim-platform.key" --listen 127.0.0.1:0 \
  --api-keys "$demo/api-keys.json" --ready-file "$demo/ready.json" --log-level warn &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; wait $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$demo/ready.json" ] && break; sleep 0.1; done
[ -s "$demo/ready.json" ] || { echo "cllm-server did not start" >&2; exit 1; }
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p" "$demo/ready.json"; }
port=$(field port)
url="https://127.0.0.1:$port"
echo "   $url  model $(field model_name)"

# The client's policy: what it accepts. Reference values come from what we
# built and the model file we hold, not from the server.
model_digest=$(sha256sum "$model" | cut -d' ' -f1)
binary_digest=$(sha256sum "$server" | cut -d' ' -f1)
pub=$(awk 'BEGIN{ORS="\\n"} {print}' "$demo/sim-platform.key.pub")
cat >"$demo/policy.json" <<EOF
{
  "version": 1,
  "platforms": ["sim"],
  "sim": {"platform_keys": ["$pub"]},
  "model_digests": ["$model_digest"],
  "binary_digests": ["$binary_digest"]
}
EOF

echo; echo "== 3. the default client policy refuses a simulated TEE (fail closed)"
if $cllm attest "$url"; then echo "unexpected: the default policy accepted a simulated TEE" >&2; exit 1; fi

echo; echo "== 4. verifying the server against $demo/policy.json"
$cllm attest "$url" --policy "$demo/policy.json"

echo; echo "== 5. attested chat (prompt and reply travel only inside the verified TLS channel)"
CLLM_API_KEY="$api_key" $cllm chat "$url" --policy "$demo/policy.json" -p "Once upon a time" -n 64 --temperature 0

echo; echo "== 6. verifying real AMD SEV-SNP evidence (Genoa, collected from hardware)"
snp="$evidence/snp"
if [ -f "$snp/trustee_genoa_v3_report.bin" ]; then
  # The VCEK is valid 2025-05-27..2032-05-27; verify at a fixed time inside it.
  $cllm attest verify --evidence "$snp/trustee_genoa_v3_report.bin" --platform snp \
    --certs "$snp/trustee_genoa_v3_vcek.der" --certs "$snp/amd_genoa_ask_ark_vcek_chain.pem" \
    --at 2026-01-01T00:00:00Z
else
  echo "(skipped: SNP samples not found under $snp)"
fi
echo; echo "done. Interactive: CLLM_API_KEY=… $cllm chat <url> --policy $demo/policy.json"
