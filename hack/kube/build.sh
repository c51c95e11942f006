#!/usr/bin/env bash
# Builds the test control plane's binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok) and grpcurl (for calling the KEDA scaler by hand) from the Go
# module proxy into a cache outside the clone, keyed by version, so every clone (CI's too)
# reuses them. Prints the bin directory on stdout.
# Idempotent: returns at once when every binary for these versions is already there.
#   --print-dir  print where the binaries live (built or not) and build nothing
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kube_version="$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' "$here/go.mod")"
etcd_version="$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2; exit}' "$here/go.mod")"
kwok_version="v0.8.0"
grpcurl_version="v1.9.4"
cache="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
bin="$cache/bin/kube-$kube_version-etcd-$etcd_version-kwok-$kwok_version"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$bin"
  exit 0
fi

log() { echo "hack/kube/build.sh: $*" >&2; }
mkdir -p "$bin"
cd "$here"
export CGO_ENABLED=0

minor="${kube_version#v1.}"; minor="${minor%%.*}"
# Without these stamps the components report v0.0.0-master and version-skew checks complain.
kube_ldflags="-s -w
 -X k8s.io/component-base/version.gitVersion=$kube_version
 -X k8s.io/component-base/version.gitMajor=1
 -X k8s.io/component-base/version.gitMinor=$minor
 -X k8s.io/component-base/version.gitTreeState=clean"

# Each binary is built to a temporary name and renamed into place, so an interrupted build
# never leaves a half-written file that a later run would take for a finished one.
build() {  # build NAME PACKAGE LDFLAGS
  local name="$1" pkg="$2" ldflags="$3"
  [[ -x "$bin/$name" ]] && return 0
  log "building $name from $pkg"
  go build -trimpath -ldflags "$ldflags" -o "$bin/.$name.tmp" "$pkg"
  mv "$bin/.$name.tmp" "$bin/$name"
}

for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  build "$cmd" "k8s.io/kubernetes/cmd/$cmd" "$kube_ldflags"
done
build etcd go.etcd.io/etcd/server/v3 "-s -w"
# Tools that pin their own k8s.io/* (or other) versions are built in their own module graphs.
install() {  # install NAME PACKAGE@VERSION
  local name="$1" pkg="$2" tmp
  [[ -x "$bin/$name" ]] && return 0
  log "building $name from $pkg"
  tmp="$(mktemp -d)"
  GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "$pkg"
  mv "$tmp/$name" "$bin/$name"
  rmdir "$tmp"
}
install kwok "sigs.k8s.io/kwok/cmd/kwok@$kwok_version"
install grpcurl "github.com/fullstorydev/grpcurl/cmd/grpcurl@$grpcurl_version"
echo "$bin"
