#!/usr/bin/env bash
# One training step of three seeds in autoarch (burn, flex CPU backend) and in PyTorch eager,
# on the same shapes, interleaved, medians, and the ratio autoarch / PyTorch.
#
#   bash bench/compare.sh            # CPU, 2 threads each (torch.set_num_threads(2))
#   ROUNDS=5 STEPS=20 bash bench/compare.sh
#
# The PyTorch model is autoarch's own export of the same architecture (`autoarch export
# --format pytorch`), so both sides run the same graph. PyTorch is installed from PyPI into
# ~/.cache/autoarch-bench-venv on first use. bench/gpu.sh runs the same comparison on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-20}
DEVICE=${DEVICE:-cpu}          # cpu | gpu (gpu.sh sets it)
FEATURES=${FEATURES:-}
VENV=${VENV:-$HOME/.cache/autoarch-bench-venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/autoarch-target}

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet torch
fi
PY="$VENV/bin/python"

STEP_BIN=${STEP_BIN:-}
AUTOARCH=${AUTOARCH:-}
if [ -z "$STEP_BIN" ]; then
    cargo build --release -q -p autoarch-agent -p autoarch-evaluator --example step_time $FEATURES
    STEP_BIN="$CARGO_TARGET_DIR/release/examples/step_time"
    AUTOARCH="$CARGO_TARGET_DIR/release/autoarch"
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
torch_device=cpu
if [ "$DEVICE" = gpu ]; then
    torch_device=cuda
    export AUTOARCH_DEVICE=gpu
fi

# name | seed file | task | batch
CASES="image-mlp|seeds/image_mlp.star|digits|128
cnn|seeds/cnn.star|fashion|64
transformer|seeds/transformer.star|mqar|32"

printf '%-12s %-8s %6s %10s %14s %14s %8s\n' model task batch params "autoarch ms" "pytorch ms" ratio
echo "$CASES" | while IFS='|' read -r name file task batch; do
    "$AUTOARCH" export "$file" --task "$task" --format pytorch > "$WORK/$name.py"
    : > "$WORK/$name.a"; : > "$WORK/$name.t"
    for _ in $(seq "$ROUNDS"); do
        "$STEP_BIN" "$file" "$task" "$batch" "$STEPS" >> "$WORK/$name.a"
        "$PY" bench/step_torch.py "$WORK/$name.py" "$task" "$batch" "$STEPS" "$torch_device" >> "$WORK/$name.t"
    done
    "$PY" - "$WORK/$name.a" "$WORK/$name.t" "$name" "$task" "$batch" <<'PYEOF'
import json, statistics, sys
a = [json.loads(l) for l in open(sys.argv[1])]
t = [json.loads(l) for l in open(sys.argv[2])]
ma = statistics.median([x for r in a for x in r["times_ms"]])
mt = statistics.median([x for r in t for x in r["times_ms"]])
assert a[0]["params"] == t[0]["params"], f"parameter counts differ: {a[0]['params']} vs {t[0]['params']}"
print(f"{sys.argv[3]:<12} {sys.argv[4]:<8} {sys.argv[5]:>6} {a[0]['params']:>10} {ma:>14.2f} {mt:>14.2f} {ma / mt:>8.2f}")
PYEOF
done
