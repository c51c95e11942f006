#!/usr/bin/env bash
# `make setup`: everything the tests need, on a fresh machine of this project's kind.
#   1. the virtualenv in .venv with the package and its dev group (redone when pyproject changes)
#   2. the Debian packages in hack/debian-packages.txt (only the missing ones)
#   3. the control plane's binaries (hack/kube/build.sh; cached outside the clone)
#   4. KEDA's operator and metrics apiserver for tests/e2e/keda (hack/keda/build.sh; same cache)
#   5. helm for the chart's tests (hack/helm/build.sh; same cache)
# Each step checks before it acts, so a second run takes a second or two.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log() { echo "setup: $*" >&2; }

python="${PYTHON:-python3}"
stamp=".venv/.updraft-setup"
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ ! -x .venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  log "installing the Python environment into .venv"
  [[ -x .venv/bin/python ]] || "$python" -m venv .venv
  # pip's and setuptools' chatter goes to a log, shown only when the install fails.
  if ! { .venv/bin/python -m pip install --upgrade "pip>=25.1" &&  # --group needs pip 25.1
         .venv/bin/python -m pip install -e . --group dev; } > .venv/pip.log 2>&1; then
    cat .venv/pip.log >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi

mapfile -t packages < <(grep -v '^\s*#' hack/debian-packages.txt | grep -v '^\s*$')
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  log "installing Debian packages: ${missing[*]}"
  sudo_=""; [[ $(id -u) == 0 ]] || sudo_="sudo"
  $sudo_ apt-get update -qq
  # Servers only: tests start them on loopback themselves, so keep the packages' services off.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo_ apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

bash hack/kube/build.sh >/dev/null
bash hack/keda/build.sh >/dev/null
bash hack/helm/build.sh >/dev/null
