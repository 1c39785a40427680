#!/usr/bin/env bash
# Runs the discovery benchmark's standard preset (about 2½ hours on 2 cores) and copies its
# report, results and plots into docs/benchmark/. The same command resumes an interrupted run:
# finished campaigns and stored final runs are not run again.
#
# usage: bash scripts/benchmark-standard.sh [WORKDIR]   (default: autoarch-benchmark-standard)
# Keep other load off the machine while it runs: the search budget is in evaluation-seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-autoarch-benchmark-standard}
cargo build --release -p autoarch-agent
BIN=${CARGO_TARGET_DIR:-target}/release/autoarch
"$BIN" benchmark --preset standard --out "$WORK"
mkdir -p docs/benchmark
cp "$WORK/report.md" "$WORK/results.json" docs/benchmark/
rm -rf docs/benchmark/plots
cp -r "$WORK/plots" docs/benchmark/plots
echo "docs/benchmark/ updated from $WORK"
