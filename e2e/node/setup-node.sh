#!/usr/bin/env bash
# What make test-node needs beyond make test's test bed: containerd, runc, the CNI plugins, buildah and
# debootstrap from Debian's packages (installed when missing, as root), kubelet, kube-scheduler,
# kube-controller-manager and the pause program (build-binaries.sh --node, cached), and the images
# (images.sh: the base image once, the controller image from the Dockerfile every run).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ "$(id -u)" != 0 ]]; then
  echo "make test-node runs a real kubelet and containerd: run it as root" >&2
  exit 1
fi
missing=()
for pair in containerd:containerd runc:runc buildah:buildah debootstrap:debootstrap iptables:iptables \
  /usr/lib/cni/bridge:containernetworking-plugins; do
  cmd="${pair%%:*}" pkg="${pair##*:}"
  if [[ "$cmd" == /* ]]; then [[ -x "$cmd" ]] || missing+=("$pkg")
  else command -v "$cmd" >/dev/null || missing+=("$pkg"); fi
done
if ((${#missing[@]})); then
  echo "[setup-node] installing ${missing[*]} from Debian's packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Our containerd never runs as the package's service: node.ts starts it with its own config, socket and root.
bash e2e/testbed/build-binaries.sh --node
bash e2e/node/images.sh
