#!/usr/bin/env bash
# Runs every fuzz target of the module for a short time each (default 10s).
# The seed corpora under testdata/fuzz also run in every `make test`.
#
# Go 1.26's fuzz coordinator can report a bare "context deadline exceeded"
# when -fuzztime expires while a worker is busy (golang/go#75804, fixed in
# Go 1.27). A real finding always writes "Failing input written to ...", so
# a failure without one is re-checked by replaying the corpus
# deterministically: it passes only if the replay passes.
set -euo pipefail
fuzztime=${1:-10s}
cd "$(dirname "$0")/.."
status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
while IFS= read -r pkg; do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== $pkg $target ($fuzztime)"
    if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" 2>&1 | tee "$log"; then
      continue
    fi
    if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
      echo "== $target: coordinator deadline race (golang/go#75804), replaying corpus"
      go test -count=1 -run="^${target}\$" "$pkg" && continue
    fi
    status=1
  done
done < <(go list ./...)
exit $status
