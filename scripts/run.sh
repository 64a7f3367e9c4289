#!/usr/bin/env bash
# run.sh — THE main command (README): installs what is missing, builds, and
# runs the main job on this machine.
#
# Today the main job is: the build's self-check (crypto known-answer tests,
# CPU features), a local generation with a GGUF model, and verification of
# real SEV-SNP hardware evidence. The end-to-end attested chat on the simulated
# TEE (cllm-server + cllm attest + cllm chat) replaces the last two steps when
# the serving layer lands (see docs/ROADMAP.md).
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

echo; $cllm --version
echo; $cllm selfcheck

if $cllm generate --help >/dev/null 2>&1; then
  echo; echo "== local generation (no TEE involved)"
  if [ -f "$models/stories260K-f32.gguf" ]; then
    $cllm generate -m "$models/stories260K-f32.gguf" -p "Once upon a time" -n 64 --greedy
    echo
  else
    echo "(skipped: $models/stories260K-f32.gguf not found; set CLLM_SHARED_DIR)"
  fi
fi

if $cllm attest verify --help >/dev/null 2>&1; then
  echo; echo "== verifying real AMD SEV-SNP evidence (Genoa, collected from hardware)"
  snp="$evidence/snp"
  if [ -f "$snp/trustee_genoa_v3_report.bin" ]; then
    # The VCEK is valid 2025-05-27..2032-05-27; verify at a fixed time inside it.
    $cllm attest verify --evidence "$snp/trustee_genoa_v3_report.bin" \
      --certs "$snp/trustee_genoa_v3_vcek.der" --certs "$snp/amd_genoa_ask_ark_vcek_chain.pem" \
      --at 2026-01-01T00:00:00Z
  else
    echo "(skipped: SNP samples not found under $snp)"
  fi
fi
