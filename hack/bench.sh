#!/usr/bin/env bash
# `make bench`: run every benchmark module in bench/ and keep its JSON report in .cache/bench/.
# Benchmarks compare against a baseline measured in the same run, so their ratios mean
# something on a shared, noisy machine; they are never run as tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=".cache/bench"
mkdir -p "$out"
shopt -s nullglob
ran=0
for f in bench/*.py; do
  name="$(basename "$f" .py)"
  [[ "$name" == __init__ || "$name" == _* ]] && continue
  echo "bench: $name" >&2
  .venv/bin/python -m "bench.$name" > "$out/$name.json"
  cat "$out/$name.json"
  ran=$((ran + 1))
done
echo "bench: $ran report(s) in $out/" >&2
