#!/usr/bin/env bash
# Builds the test bed's binaries (kube-apiserver, kubectl, etcd, helm, kubeconform) from the Go
# module proxy into a cache outside the repo, once. Honours KUBEBUILDER_ASSETS /
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

build_kube() {
  local out_api="$BIN/kube-apiserver-$K8S_VERSION" out_ctl="$BIN/kubectl-$K8S_VERSION"
  if [[ -x "$out_api" && -x "$out_ctl" ]]; then return; fi
  if have_assets && [[ -x "$out_ctl" || -n "$(command -v kubectl)" ]]; then return; fi
  local dir="$CACHE/build/kubernetes-$K8S_VERSION"
  mkdir -p "$dir"
  log "building kube-apiserver and kubectl v$K8S_VERSION from the Go module proxy (first time only; several minutes)"
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
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    go mod tidy -e >/dev/null 2>&1 || go mod tidy
    local minor ld="-s -w" pkg
    minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
    # Without these the server reports v0.0.0 and version-gated clients (helm, kubectl) misbehave.
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld="$ld -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    done
    go build -trimpath -ldflags "$ld" -o "$out_api.tmp" k8s.io/kubernetes/cmd/kube-apiserver
    mv "$out_api.tmp" "$out_api"
    go build -trimpath -ldflags "$ld" -o "$out_ctl.tmp" k8s.io/kubernetes/cmd/kubectl
    mv "$out_ctl.tmp" "$out_ctl"
  )
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
log "binaries ready in $BIN"
