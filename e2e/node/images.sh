#!/usr/bin/env bash
# The real node's images, built without a Docker engine and without pulling from any registry
# (make test-node; runs as root):
#   - the base image the Dockerfile names, node:24-bookworm-slim, assembled here: a Debian bookworm
#     minbase root filesystem from Debian's packages (debootstrap) plus Node 24 (the npm `node`
#     package, the same one the Makefile installs) and npm (the npm `npm` package) under /usr/local,
#     as in the official image. Built once, kept in the cache.
#   - the pause image containerd starts every pod sandbox from (the static pause program
#     build-binaries.sh --node builds).
#   - the controller image, built from the repository's Dockerfile, unchanged, with buildah.
# Writes docker archives into $SECRETSYNC_CACHE/node/images/ for `ctr images import`:
#   pause.tar (secretsync.local/pause:3.10) and secretsync.tar (secretsync.local/secretsync:test).
# buildah keeps its storage in the cache too, never in /var/lib/containers.
set -euo pipefail

CACHE="${SECRETSYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/secretsync}"
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$CACHE/node/images"
STORE="$CACHE/node/buildah"
NODE_BIN="${SECRETSYNC_NODE24:-$CACHE/node/node_modules/node/bin/node}"
NPM_VERSION=11.6.2
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE=docker.io/library/node:24-bookworm-slim
PAUSE=secretsync.local/pause:3.10
APP=secretsync.local/secretsync:test

log() { echo "[node-images] $*" >&2; }
bah() { buildah --root "$STORE/storage" --runroot "$STORE/run" --storage-driver overlay "$@"; }
mkdir -p "$OUT" "$STORE"

[[ -x "$NODE_BIN" ]] || NODE_BIN="$(command -v node)"
NODE_VERSION="$("$NODE_BIN" --version)"
[[ "$NODE_VERSION" == v24.* ]] || { log "need Node 24 for the base image, found $NODE_VERSION at $NODE_BIN"; exit 1; }

# A container from scratch, filled from a directory, committed under a name.
commit_dir() {
  local src="$1" name="$2"; shift 2
  local ctr mnt
  ctr="$(bah from scratch)"
  mnt="$(bah mount "$ctr")"
  tar -C "$src" -cf - . | tar -C "$mnt" -xf -
  bah umount "$ctr" >/dev/null
  bah config "$@" "$ctr"
  bah commit --quiet --rm "$ctr" "$name" >/dev/null
}

base_image() {
  local stamp="$STORE/base-$SUITE-$NODE_VERSION-npm-$NPM_VERSION"
  if [[ -f "$stamp" ]] && bah inspect --type image "$BASE" >/dev/null 2>&1; then return; fi
  log "assembling $BASE: Debian $SUITE minbase + Node $NODE_VERSION + npm $NPM_VERSION (once)"
  local work rootfs
  work="$(mktemp -d)"
  rootfs="$work/rootfs"
  trap 'rm -rf "$work"' RETURN
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; return 1; }
  # As slim as the official image: no apt lists, caches, docs or device nodes (the runtime makes /dev).
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/dev/*
  install -D -m 0755 "$NODE_BIN" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
  (cd "$work" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
  tar -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1 -xzf "$work/npm-$NPM_VERSION.tgz"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  commit_dir "$rootfs" "$BASE" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env "NODE_VERSION=${NODE_VERSION#v}" --cmd node
  touch "$stamp"
}

pause_image() {
  [[ -s "$OUT/pause.tar" ]] && return
  local dir
  dir="$(mktemp -d)"
  install -m 0755 "$CACHE/bin/pause" "$dir/pause"
  commit_dir "$dir" "$PAUSE" --entrypoint '["/pause"]' --user 65535:65535
  rm -rf "$dir"
  bah push --quiet "$PAUSE" "docker-archive:$OUT/pause.tar.tmp:$PAUSE" >/dev/null
  mv "$OUT/pause.tar.tmp" "$OUT/pause.tar"
}

app_image() {
  log "building $APP from the Dockerfile"
  # The build's npm ci reaches the registry through this machine's TLS setup (on some, a proxy whose CA
  # only the host trusts): the host's CA bundle is mounted for the build's RUN steps only, never copied
  # into a layer.
  local etc
  etc="$(mktemp -d)"
  printf 'cafile=/run/secretsync-build/ca.crt\n' > "$etc/npmrc"
  local started=$SECONDS
  bah bud --quiet --pull=never --isolation=chroot --layers=false \
    -v "/etc/ssl/certs/ca-certificates.crt:/run/secretsync-build/ca.crt:ro" \
    -v "$etc/npmrc:/usr/local/etc/npmrc:ro" \
    -f "$REPO/Dockerfile" -t "$APP" "$REPO" >/dev/null
  rm -rf "$etc"
  log "built in $((SECONDS - started)) s: $(bah images --format '{{.Size}}' "$APP") in $(bah inspect --type image --format '{{len .OCIv1.RootFS.DiffIDs}}' "$APP") layers"
  rm -f "$OUT/secretsync.tar"
  bah push --quiet "$APP" "docker-archive:$OUT/secretsync.tar.tmp:$APP" >/dev/null
  mv "$OUT/secretsync.tar.tmp" "$OUT/secretsync.tar"
  # Old builds' layers would pile up in the cache.
  bah rmi --prune >/dev/null 2>&1 || true
}

base_image
pause_image
app_image
log "images ready in $OUT"
