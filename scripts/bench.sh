#!/usr/bin/env bash
# Runs the benchmarks recorded in BENCHMARKS.md and prints their table rows.
# Usage: scripts/bench.sh [kafka-sse ...]
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./internal/bench "$@"
