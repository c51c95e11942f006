#!/usr/bin/env bash
# Builds helm (helm.sh/helm/v3, cmd/helm) from the Go module proxy into the versioned cache
# outside the clone, for the chart's tests (tests/e2e/test_chart.py). Prints the directory on
# stdout. Stripped (-s -w) and built alone, so a cold CI run adds only helm's own compile.
# Idempotent: returns at once when the binary for this version is already there.
#   --print-dir  print where the binary lives (built or not) and build nothing
set -euo pipefail

helm_version="v3.22.0"
cache="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
dir="$cache/bin/helm-$helm_version"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$dir"
  exit 0
fi

log() { echo "hack/helm/build.sh: $*" >&2; }
if [[ -x "$dir/helm" ]]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir"
export CGO_ENABLED=0

# Built into a temporary directory and renamed into place, so an interrupted build never
# leaves a half-written file that a later run would take for a finished one. The version is
# stamped, or `helm version` reports a development build.
log "building helm $helm_version"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp" go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version" \
  "helm.sh/helm/v3/cmd/helm@$helm_version"
mv "$tmp/helm" "$dir/.helm.tmp"
mv "$dir/.helm.tmp" "$dir/helm"
echo "$dir"
