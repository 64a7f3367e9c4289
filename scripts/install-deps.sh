#!/usr/bin/env bash
# install-deps.sh — installs the Debian 12 packages cllm needs to build and test.
# Idempotent: quiet when everything is present; runs `apt-get update` only when
# something is missing. Every library added to the project adds its package here.
set -euo pipefail

PACKAGES=(
  build-essential g++ cmake ninja-build pkg-config git
  libssl-dev openssl            # TLS, X.509, hashes, ECDSA/RSA/SM2/SM3, AES-GCM
  libspdlog-dev libfmt-dev      # logging
  nlohmann-json3-dev            # JSON
  libcli11-dev                  # command-line parsing
  libpcre2-dev                  # Unicode regexes for pre-tokenization
  libboost-dev                  # Boost.Asio / Beast (header-only) for HTTP
  libsqlite3-dev                # embedded store for cllm-trust
  sqlite3                       # its CLI: attack tests edit trust.db offline (tests/security)
  libpq-dev                     # cllm-trust's PostgreSQL store (several trust replicas on one database)
  postgresql                    # server binaries: deploy tests start a real PostgreSQL in a temp dir
  libjose-dev                   # JOSE (JWS/JWE) for tokens and key wrapping
  jose                          # libjose's CLI: interop tests in src/trust (skipped without it)
  libgtest-dev libgmock-dev     # tests
  libbenchmark-dev              # microbenchmarks
  clang libclang-rt-14-dev      # libFuzzer targets (scripts/fuzz.sh)
  curl                          # end-to-end tests drive the OpenAI endpoint with it
  python3 python3-jinja2        # the chat-template oracle (tests/tools/render_chat_template.py)
  python3-jsonschema            # oracle of the structured-output tests (src/engine/grammar)
  buildah podman runc           # OCI images from scratch (scripts/build-image.sh), run in tests/deploy
  uidmap fuse-overlayfs slirp4netns  # podman/buildah as a non-root user (rootless storage and network)
  python3-yaml                  # offline checks of the Kubernetes manifests (tests/deploy/k8s_manifests_test.py)
  nginx libnginx-mod-stream     # the relay (deploy/relay/, tests/deploy/relay_test.cc): nginx stream, TLS passthrough
  haproxy                       # the relay's HAProxy TCP-mode variant (same tests)
)
# `kubectl kustomize` renders deploy/k8s overlays in tests/deploy (skipped without it). A kubectl
# already on PATH (e.g. from the Kubernetes apt repository) is kept: Debian's would conflict with it.
command -v kubectl >/dev/null || PACKAGES+=(kubernetes-client)
# The OpenAI Node SDK test (tests/e2e/openai_sdk_e2e_test.cc) runs the official `openai` npm
# package. A Node.js already on PATH (e.g. NodeSource's, which bundles npm) is kept: Debian's
# npm package would conflict with it.
command -v node >/dev/null || PACKAGES+=(nodejs)
command -v npm >/dev/null || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}" >&2
# The daemons some of these packages ship (nginx, haproxy, postgresql) are not started: tests and
# demos run their own on loopback, and a system nginx on port 80 is not ours to start. Debian's
# switch for that is policy-rc.d (exit 101 = "do not start"); one already present is left alone.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# installed by cllm scripts/install-deps.sh for the duration of one install\nexit 101\n' |
    $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
