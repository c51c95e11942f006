#!/usr/bin/env bash
# Builds KEDA's operator and metrics apiserver (cmd/operator, cmd/adapter) from the Go module
# proxy into the versioned cache outside the clone, with KEDA's CRDs beside them, for the
# tests/e2e/keda tier. Prints the directory on stdout.
# `go install …@version` is refused for KEDA (its go.mod holds a replace directive), so the
# module is downloaded, copied to a writable place and built there.
# Idempotent: returns at once when both binaries and the CRDs are already there.
#   --print-dir  print where the binaries live (built or not) and build nothing
set -euo pipefail

keda_version="v2.21.0"
module="github.com/kedacore/keda/v2"
cache="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
dir="$cache/bin/keda-$keda_version"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$dir"
  exit 0
fi

log() { echo "hack/keda/build.sh: $*" >&2; }
if [[ -x "$dir/keda-operator" && -x "$dir/keda-adapter" && -d "$dir/crds" ]]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir"
export CGO_ENABLED=0

log "downloading $module@$keda_version"
src="$(go mod download -json "$module@$keda_version" | awk -F'"' '$2 == "Dir" {print $4; exit}')"
[[ -d "$src" ]] || { log "go mod download gave no module directory"; exit 1; }

work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$src/." "$work/"
chmod -R u+w "$work"

# Both binaries are built to temporary names and renamed into place, so an interrupted
# build never leaves a half-written file that a later run would take for a finished one.
log "building keda-operator and keda-adapter (10-17 min on 2 cores from cold)"
(cd "$work" && GOFLAGS="-mod=mod -buildvcs=false" go build -trimpath -ldflags "-s -w" \
  -o "$work/.out/" ./cmd/operator ./cmd/adapter)
rm -rf "$dir/.crds.tmp"
cp -r "$work/config/crd/bases" "$dir/.crds.tmp"
mv "$work/.out/operator" "$dir/.keda-operator.tmp"
mv "$work/.out/adapter" "$dir/.keda-adapter.tmp"
mv "$dir/.keda-operator.tmp" "$dir/keda-operator"
mv "$dir/.keda-adapter.tmp" "$dir/keda-adapter"
rm -rf "$dir/crds"
mv "$dir/.crds.tmp" "$dir/crds"
echo "$dir"
