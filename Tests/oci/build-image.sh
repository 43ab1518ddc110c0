#!/usr/bin/env bash
# Builds container images without a registry or a container engine, for the oci runtime's tests and as
# an example: a root filesystem of programs and the shared libraries they load (found with ldd), and an
# OCI image layout of it with real sha256 digests, ready for `weft image import`.
#
#   build-image.sh rootfs DIR PROGRAM...     copy each PROGRAM (DEST=SOURCE puts SOURCE at DEST), the
#                                            libraries ldd names for it and a minimal /etc into DIR
#   build-image.sh layout DIR ROOTFS NAME:TAG ENTRYPOINT-JSON [ENV-JSON]
#                                            write an OCI image layout to DIR (and DIR.tar) whose first layer
#                                            is ROOTFS (plain tar) and whose second (gzip) adds /etc/motd and
#                                            deletes /etc/obsolete with a whiteout
set -Eeuo pipefail

die() { echo "build-image.sh: $*" >&2; exit 1; }

sha() { sha256sum "$1" | cut -c1-64; }

rootfs() {
  local dir=$1; shift
  mkdir -p "$dir"/{bin,etc,tmp,proc,sys,dev,run,usr/local/bin}
  for spec in "$@"; do
    local dest=${spec%%=*} source=${spec#*=}
    [ "$dest" = "$spec" ] && dest="/usr/local/bin/$(basename "$source")"
    [ -x "$source" ] || die "$source is not an executable"
    mkdir -p "$dir$(dirname "$dest")"
    cp -L "$source" "$dir$dest"
    for lib in $(ldd "$source" 2>/dev/null | grep -o '/[^ ]*' || true); do
      mkdir -p "$dir$(dirname "$lib")"
      [ -e "$dir$lib" ] || cp -L "$lib" "$dir$lib"
    done
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' > "$dir/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/etc/group"
  printf 'hosts: files dns\n' > "$dir/etc/nsswitch.conf"
  printf '127.0.0.1\tlocalhost\n' > "$dir/etc/hosts"
  echo "this file is deleted by the image's second layer" > "$dir/etc/obsolete"
}

layout() {
  local dir=$1 root=$2 name=$3 entrypoint=$4 env=${5:-'["PATH=/usr/local/bin:/usr/bin:/bin"]'}
  rm -rf "$dir" "$dir.tar"
  mkdir -p "$dir/blobs/sha256"
  local work
  work=$(mktemp -d)
  tar -C "$root" --numeric-owner -cf "$work/layer1.tar" .
  mkdir -p "$work/l2/etc"
  echo "built by build-image.sh" > "$work/l2/etc/motd"
  touch "$work/l2/etc/.wh.obsolete"
  tar -C "$work/l2" --numeric-owner -cf "$work/layer2.tar" .
  gzip -1 -c "$work/layer2.tar" > "$work/layer2.tar.gz"
  local d1 d2 diff1 diff2 s1 s2
  d1=$(sha "$work/layer1.tar"); diff1=$d1; s1=$(stat -c %s "$work/layer1.tar")
  d2=$(sha "$work/layer2.tar.gz"); diff2=$(sha "$work/layer2.tar"); s2=$(stat -c %s "$work/layer2.tar.gz")
  mv "$work/layer1.tar" "$dir/blobs/sha256/$d1"
  mv "$work/layer2.tar.gz" "$dir/blobs/sha256/$d2"
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"Env":%s,"WorkingDir":"/tmp"},"rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]}}' \
    "$entrypoint" "$env" "$diff1" "$diff2" > "$work/config.json"
  local dc sc
  dc=$(sha "$work/config.json"); sc=$(stat -c %s "$work/config.json")
  mv "$work/config.json" "$dir/blobs/sha256/$dc"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$dc" "$sc" "$d1" "$s1" "$d2" "$s2" > "$work/manifest.json"
  local dm sm
  dm=$(sha "$work/manifest.json"); sm=$(stat -c %s "$work/manifest.json")
  mv "$work/manifest.json" "$dir/blobs/sha256/$dm"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$dm" "$sm" "$name" > "$dir/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$dir/oci-layout"
  tar -C "$dir" -cf "$dir.tar" .
  rm -rf "$work"
  echo "sha256:$dm"
}

case "${1:-}" in
  rootfs) shift; [ $# -ge 2 ] || die "usage: rootfs DIR PROGRAM..."; rootfs "$@" ;;
  layout) shift; [ $# -ge 4 ] || die "usage: layout DIR ROOTFS NAME:TAG ENTRYPOINT-JSON [ENV-JSON]"; layout "$@" ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
