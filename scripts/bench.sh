#!/usr/bin/env bash
# Runs the benchmarks recorded in BENCHMARKS.md and prints their table rows.
# Usage: scripts/bench.sh [kafka-sse ...]
set -euo pipefail
cd "$(dirname "$0")/.."
# The http-proxy benchmark compares with nginx under wrk load; both come
# from Debian. The bench starts nginx processes of its own on free ports.
if [ $# -eq 0 ] || [[ " $* " == *" http-proxy "* ]]; then
  if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    apt-get install -y nginx wrk
  fi
fi
go run ./internal/bench "$@"
