#!/usr/bin/env bash
# Runs the discovery benchmark's standard preset and copies its report, results and plots into
# docs/benchmark/. On 2 cores the search takes about 65 minutes (60 campaigns of 120
# evaluation-seconds on 2 workers, measured 2026-12-03) and the final protocol about 15 minutes
# per task (27 designs × 3 seeds at 120 and 360 steps). The same command resumes an interrupted
# run: finished campaigns and stored final runs are not run again.
#
# usage: bash scripts/benchmark-standard.sh [WORKDIR]   (default: autoarch-benchmark-standard)
# Keep other load off the machine while it runs: the search budget is in evaluation-seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-autoarch-benchmark-standard}
cargo build --release -p autoarch-agent
BIN=${CARGO_TARGET_DIR:-target}/release/autoarch
# The run uses its own copy of the binary: workers are started from it, so a rebuild while it
# runs cannot mix two builds in one benchmark.
mkdir -p "$WORK"
cp "$BIN" "$WORK/autoarch.bin"
"$WORK/autoarch.bin" benchmark --preset standard --out "$WORK"
mkdir -p docs/benchmark
cp "$WORK/report.md" "$WORK/results.json" docs/benchmark/
rm -rf docs/benchmark/plots
cp -r "$WORK/plots" docs/benchmark/plots
echo "docs/benchmark/ updated from $WORK"
