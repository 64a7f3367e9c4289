#!/usr/bin/env bash
# build-image.sh — one OCI image per cllm role, from scratch, pulling nothing.
#
#   scripts/build-image.sh [--role server|trust|cllm] [--build-dir build] [--out DIR] [--tag NAME]
#
# The image holds exactly: the role's executable(s) from BUILD_DIR/bin, the
# shared libraries `ldd` lists for them (at the paths ldd prints, contents of
# the files those paths resolve to), the dynamic loader, a one-line
# /etc/passwd and /etc/group for the unprivileged user 65532, and empty mount
# points (/models, /state, /run/cllm, /tmp). No shell, no package manager, no
# CA bundle: every TLS peer a cllm role talks to is pinned explicitly
# (--trust-ca, RA-TLS evidence), never checked against public roots.
#
# Runtime contract (docs/deployment.md): user 65532:65532 (numeric, so the
# runtime needs no passwd lookup), read-only root filesystem; the model comes
# from a read-only volume at /models, state (cllm-trust) from a volume at
# /state, writable scratch (ready file, keys) from a tmpfs or volume at
# /run/cllm. cllm-server and cllm-trust lock their memory: give the container
# CAP_IPC_LOCK (or run with --allow-unlocked-memory, which they log loudly).
#
# Output (NAME = the executable: cllm-server, cllm-trust, cllm): the image in
# local containers-storage as TAG (default localhost/NAME:dev), the same image
# as an OCI layout in OUT/NAME.oci (default OUT = BUILD_DIR/images), and the
# manifest digest printed on stdout (one line, sha256:…) and written to
# OUT/NAME.digest.
# That digest is what an attestation or CoCo policy pins
# (deploy/k8s/coco/stamp-digest.sh).
#
# Reproducibility: file mtimes and the image's creation time are fixed
# (SOURCE_DATE_EPOCH, default 0), files are copied in sorted order with fixed
# owner (0:0) and modes, history and the builder label are omitted, and layers
# are stored uncompressed (no compressor output to vary). The same binaries
# and the same host libraries therefore give the same digest. It does NOT make
# the binaries themselves reproducible (compiler, flags and paths decide
# that), and a host with other library versions gives another digest: build
# on a pinned builder image/host. Pushing elsewhere keeps the digest only if
# the layers stay uncompressed: copy the OCI layout as it is
# (`skopeo copy --preserve-digests oci:OUT/NAME.oci docker://…`); a push
# that compresses (buildah/podman push default) makes a new manifest digest.
#
# Exit codes: 0 built; 1 usage or build error; 3 buildah is not installed.
set -euo pipefail

role=server
build_dir=build
out_dir=""
tag=""
usage() { sed -n 's/^#   //p' "$0" | head -1 >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --role) role="${2:?}"; shift 2 ;;
    --build-dir) build_dir="${2:?}"; shift 2 ;;
    --out) out_dir="${2:?}"; shift 2 ;;
    --tag) tag="${2:?}"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "build-image: unknown argument $1" >&2; usage ;;
  esac
done

# The image is named after its executable: cllm-server, cllm-trust, cllm.
case "$role" in
  server) bins=(cllm-server) ;;
  trust) bins=(cllm-trust) ;;
  cllm) bins=(cllm) ;;
  *) echo "build-image: --role must be server, trust or cllm (got $role)" >&2; exit 1 ;;
esac
name="${bins[0]}"
[ -n "$out_dir" ] || out_dir="$build_dir/images"
[ -n "$tag" ] || tag="localhost/$name:dev"
epoch="${SOURCE_DATE_EPOCH:-0}"
readonly uid=65532

command -v buildah >/dev/null || { echo "build-image: buildah is not installed (scripts/install-deps.sh)" >&2; exit 3; }
for b in "${bins[@]}"; do
  [ -x "$build_dir/bin/$b" ] || { echo "build-image: $build_dir/bin/$b not built" >&2; exit 1; }
done

stage="$(mktemp -d)"
ctr=""
cleanup() {
  [ -n "$ctr" ] && buildah rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$stage"
}
trap cleanup EXIT
umask 022
root="$stage/rootfs"
mkdir -p "$root"

# --- executables and exactly the libraries ldd lists ----------------------------
libs=()
for b in "${bins[@]}"; do
  install -D -m 0555 "$build_dir/bin/$b" "$root/usr/bin/$b"
  # Each ldd line is "name => /path (addr)", "/path (addr)" (the loader) or
  # "linux-vdso.so.1 (addr)" (in the kernel, nothing to copy).
  ldd_out="$(ldd "$build_dir/bin/$b")"
  if grep -q "not found" <<<"$ldd_out"; then
    echo "build-image: $b has unresolved libraries:" >&2
    grep "not found" <<<"$ldd_out" >&2
    exit 1
  fi
  while read -r path; do libs+=("$path"); done < <(grep -o '/[^ ]*' <<<"$ldd_out")
done
mapfile -t libs < <(printf '%s\n' "${libs[@]}" | sort -u)
# The loader is the line without "=>": the kernel executes it (PT_INTERP), so
# it needs the execute bit; the libraries are only mapped.
loaders="$(for b in "${bins[@]}"; do ldd "$build_dir/bin/$b"; done | awk '$1 ~ /^\// && $2 != "=>" {print $1}' | sort -u)"
for lib in "${libs[@]}"; do
  mode=0444
  grep -qxF "$lib" <<<"$loaders" && mode=0555
  # The path ldd printed is where the loader looks; the bytes are those of
  # the file it resolves to (Debian's /lib is a symlink to /usr/lib).
  install -D -m "$mode" "$(readlink -f "$lib")" "$root$lib"
done

# --- the unprivileged user and the mount points ---------------------------------
mkdir -p "$root/etc"
printf 'cllm:x:%d:%d:cllm:/nonexistent:/nonexistent\n' "$uid" "$uid" >"$root/etc/passwd"
printf 'cllm:x:%d:\n' "$uid" >"$root/etc/group"
chmod 0444 "$root/etc/passwd" "$root/etc/group"
# Empty directories the runtime mounts over; a read-only root stays read-only.
mkdir -p "$root/models" "$root/state" "$root/run/cllm" "$root/tmp"
chmod 1777 "$root/tmp"

# Fixed metadata: every entry dated SOURCE_DATE_EPOCH (buildah's --timestamp
# re-dates the layer too; this keeps the staging tree itself deterministic).
find "$root" -exec touch -h -d "@$epoch" {} +

# --- the image ------------------------------------------------------------------
ctr="$(buildah from --quiet scratch)"
# One copy of the whole tree: one layer, entries in directory-walk order.
buildah copy --quiet --chown 0:0 "$ctr" "$root/" / >/dev/null
buildah config \
  --user "$uid:$uid" \
  --entrypoint "[\"/usr/bin/${bins[0]}\"]" \
  --cmd '[]' \
  --workingdir / \
  --env PATH=/usr/bin \
  --stop-signal SIGTERM \
  --label "org.opencontainers.image.title=$name" \
  --label "org.opencontainers.image.source=https://github.com/cllm/cllm" \
  "$ctr"
commit=(buildah commit --quiet --timestamp "$epoch" --omit-history --identity-label=false --format oci
        --disable-compression)
# First the OCI layout beside the build: layers stored uncompressed, so the
# manifest digest depends on nothing but the files and the configuration
# above (no compressor whose output could change between versions).
mkdir -p "$out_dir"
rm -rf "$out_dir/$name.oci"
"${commit[@]}" "$ctr" "oci:$out_dir/$name.oci:latest" >/dev/null
# Then the same image in local containers-storage, for podman.
"${commit[@]}" "$ctr" "$tag" >/dev/null
buildah rm "$ctr" >/dev/null
ctr=""
digest="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' \
  "$out_dir/$name.oci/index.json")"
case "$digest" in
  sha256:????????????????????????????????????????????????????????????????) ;;
  *) echo "build-image: unexpected digest '$digest'" >&2; exit 1 ;;
esac
echo "$digest" >"$out_dir/$name.digest"
echo "build-image: $tag  $out_dir/$name.oci  (${#libs[@]} libraries)" >&2
echo "$digest"
