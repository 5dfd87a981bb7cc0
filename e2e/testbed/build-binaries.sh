#!/usr/bin/env bash
# Builds the test bed's binaries (kube-apiserver, kubectl, etcd, helm, kubeconform) from the Go
# module proxy into a cache outside the repo, once. With --node, also the real node's (kubelet,
# kube-scheduler, kube-controller-manager) and its pause program (make test-node). Honours KUBEBUILDER_ASSETS /
# TEST_ASSET_KUBE_APISERVER / TEST_ASSET_ETCD: when those point at binaries, nothing is built for them.
# Prints nothing but progress on stderr; the binaries land in $SECRETSYNC_CACHE/bin/<name>-<version>.
set -euo pipefail

K8S_VERSION=1.35.4     # EKS supports 1.33-1.35
ETCD_VERSION=3.6.6     # build/dependencies.yaml of kubernetes v1.35.4
HELM_VERSION=3.19.5
KUBECONFORM_VERSION=0.7.0

CACHE="${SECRETSYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/secretsync}"
BIN="$CACHE/bin"
mkdir -p "$BIN"
export GOFLAGS=-buildvcs=false CGO_ENABLED=0

log() { echo "[build-binaries] $*" >&2; }

have_assets() {
  [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "${KUBEBUILDER_ASSETS}/kube-apiserver" && -x "${KUBEBUILDER_ASSETS}/etcd" ]] ||
    [[ -n "${TEST_ASSET_KUBE_APISERVER:-}" && -x "${TEST_ASSET_KUBE_APISERVER}" && -n "${TEST_ASSET_ETCD:-}" && -x "${TEST_ASSET_ETCD}" ]]
}

NODE=false
[[ "${1:-}" == "--node" ]] && NODE=true
NODE_CMDS=(kubelet kube-scheduler kube-controller-manager)

# The wrapper module every Kubernetes command is built from (k8s.io/kubernetes cannot be `go install`ed).
kube_module() {
  local dir="$1"
  [[ -f "$dir/go.mod" && -f "$dir/go.sum" ]] && grep -q kube-controller-manager "$dir/tools.go" 2>/dev/null && return
  mkdir -p "$dir"
  (
    cd "$dir"
    local modfile
    modfile="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    {
      echo "module secretsync.local/testbed-kube"
      echo
      echo "go 1.25.0"
      echo
      echo "require k8s.io/kubernetes v$K8S_VERSION"
      echo
      echo "replace ("
      # Every staging module pinned to the matching v0.x release, as k8s.io/kubernetes requires.
      grep -E '=> \./staging/src/' "$modfile" | awk -v v="v0.${K8S_VERSION#1.}" '{print "\t" $1 " => " $1 " " v}'
      echo ")"
    } > go.mod
    cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
    go mod tidy -e >/dev/null 2>&1 || go mod tidy
  )
}

# go build of one k8s.io/kubernetes command into $BIN/<name>-$K8S_VERSION.
build_kube_cmd() {
  local name="$1" out="$BIN/$1-$K8S_VERSION" dir="$CACHE/build/kubernetes-$K8S_VERSION"
  [[ -x "$out" ]] && return
  kube_module "$dir"
  local minor ld="-s -w" pkg
  minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  # Without these the server reports v0.0.0 and version-gated clients (helm, kubectl) misbehave.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  log "building $name v$K8S_VERSION"
  (cd "$dir" && go build -trimpath -ldflags "$ld" -o "$out.tmp" "k8s.io/kubernetes/cmd/$name")
  mv "$out.tmp" "$out"
}

build_kube() {
  local out_api="$BIN/kube-apiserver-$K8S_VERSION" out_ctl="$BIN/kubectl-$K8S_VERSION"
  if [[ -x "$out_api" && -x "$out_ctl" ]]; then return; fi
  if have_assets && [[ -x "$out_ctl" || -n "$(command -v kubectl)" ]]; then return; fi
  log "building kube-apiserver and kubectl v$K8S_VERSION from the Go module proxy (first time only; several minutes)"
  build_kube_cmd kube-apiserver
  build_kube_cmd kubectl
}

# The pod sandbox's process: sleeps until told to stop (containerd's sandbox_image; no registry here).
build_pause() {
  local out="$BIN/pause" dir="$CACHE/build/pause"
  [[ -x "$out" ]] && return
  mkdir -p "$dir"
  cat > "$dir/main.go" <<'GO'
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	<-c
}
GO
  printf 'module secretsync.local/pause\n\ngo 1.25.0\n' > "$dir/go.mod"
  (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$out.tmp" .)
  mv "$out.tmp" "$out"
}

build_etcd() {
  local out="$BIN/etcd-$ETCD_VERSION"
  if [[ -x "$out" ]] || have_assets; then return; fi
  log "building etcd v$ETCD_VERSION"
  # etcd's own go.mod carries replace directives, so `go install pkg@v` refuses it: use a wrapper module.
  local dir="$CACHE/build/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  (
    cd "$dir"
    printf 'module secretsync.local/testbed-etcd\n\ngo 1.25.0\n\nrequire go.etcd.io/etcd/server/v3 v%s\n' "$ETCD_VERSION" > go.mod
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
    go mod tidy
    go build -trimpath -ldflags "-s -w" -o "$out.tmp" go.etcd.io/etcd/server/v3
    mv "$out.tmp" "$out"
  )
}

build_helm() {
  local out="$BIN/helm-$HELM_VERSION"
  if [[ -x "$out" ]]; then return; fi
  log "building helm v$HELM_VERSION"
  GOBIN="$CACHE/build/helm-$HELM_VERSION" go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  mv "$CACHE/build/helm-$HELM_VERSION/helm" "$out"
}

build_kubeconform() {
  local out="$BIN/kubeconform-$KUBECONFORM_VERSION"
  if [[ -x "$out" ]]; then return; fi
  log "building kubeconform v$KUBECONFORM_VERSION"
  GOBIN="$CACHE/build/kubeconform-$KUBECONFORM_VERSION" go install -trimpath -ldflags "-s -w" "github.com/yannh/kubeconform/cmd/kubeconform@v$KUBECONFORM_VERSION"
  mv "$CACHE/build/kubeconform-$KUBECONFORM_VERSION/kubeconform" "$out"
}

build_etcd
build_helm
build_kubeconform
build_kube
if $NODE; then
  for cmd in "${NODE_CMDS[@]}"; do build_kube_cmd "$cmd"; done
  build_pause
fi
log "binaries ready in $BIN"
