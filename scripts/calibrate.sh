#!/usr/bin/env bash
# Calibrates benchmark tasks: trains every library sequence seed on each task setting with a few
# fresh training seeds, at the search's budget and at 3x it, and prints the table the benchmark
# docs keep (mean ± SD per seed and task, and where the best seed lands between chance and the
# ceiling).
#
#   bash scripts/calibrate.sh [STEPS] [SEEDS] [TASKS_FILE] > calibration.md
#
# STEPS: the search's training steps (default 120; the longer budget is 3x). SEEDS: training
# seeds per design (default 3, from 1000). TASKS_FILE: one task per line as `label: autoarch eval
# options` (default: the standard preset's tasks, below). Runs two evaluations at a time.
set -euo pipefail
cd "$(dirname "$0")/.."

steps=${1:-120}
seeds=${2:-3}
tasks_file=${3:-}
bin=${AUTOARCH_BIN:-target/release/autoarch}
[ -x "$bin" ] || bin="${CARGO_TARGET_DIR:-target}/release/autoarch"
[ -x "$bin" ] || { echo "build first: cargo build --release -p autoarch-agent" >&2; exit 1; }

default_tasks() {
    cat <<'EOF'
mqar: --task mqar --seq-len 32 --vocab 64 --kv-pairs 3 --batch-size 32
mqar-hard: --task mqar --seq-len 64 --vocab 512 --kv-pairs 8 --batch-size 32
noisy_recall: --task noisy_recall --seq-len 32 --vocab 64 --kv-pairs 3 --noise 0.2 --batch-size 32
selective_copy: --task selective_copy --seq-len 32 --vocab 16 --copy 8 --batch-size 32
fuzzy_recall: --task fuzzy_recall --seq-len 32 --vocab 32 --kv-pairs 3 --motif 2 --batch-size 32
memorization: --task memorization --seq-len 32 --vocab 64 --motif 2 --batch-size 32
EOF
}

if [ -n "$tasks_file" ]; then tasks=$(cat "$tasks_file"); else tasks=$(default_tasks); fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Every run as a line: label seed-file factor training-seed.
jobs=()
while IFS= read -r line; do
    [ -z "$line" ] && continue
    label=${line%%:*}
    for f in seeds/*.star; do
        grep -q '^# task: mqar' "$f" || continue
        for factor in 1 3; do
            for s in $(seq 1000 $((1000 + seeds - 1))); do
                jobs+=("$label|$f|$factor|$s")
            done
        done
    done
done <<<"$tasks"

run_one() {
    IFS='|' read -r label f factor s <<<"$1"
    opts=$(printf '%s\n' "$tasks" | grep "^$label:" | cut -d: -f2-)
    # shellcheck disable=SC2086
    result=$("$bin" eval "$f" $opts --steps $((steps * factor)) --seed "$s" --json 2>/dev/null || true)
    printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$(basename "$f" .star)" "$factor" "$s" "$result"
}
export -f run_one
export tasks steps bin
printf '%s\n' "${jobs[@]}" | xargs -P 2 -I{} bash -c 'run_one "$@"' _ {} >"$out/runs.tsv"

python3 - "$out/runs.tsv" "$steps" <<'EOF'
import json, statistics, sys
runs, steps = sys.argv[1], int(sys.argv[2])
table = {}
chance = {}
for line in open(runs):
    label, seed, factor, s, result = line.rstrip("\n").split("\t", 4)
    try:
        r = json.loads(result)
        score = r["metrics"]["score"] if r.get("status") == "ok" else None
    except (ValueError, KeyError):
        score = None
    table.setdefault(label, {}).setdefault(seed, {}).setdefault(factor, []).append(score)
def cell(xs):
    ok = [x for x in xs if x is not None]
    if not ok:
        return "failed"
    sd = statistics.stdev(ok) if len(ok) > 1 else 0.0
    failed = f" ({len(xs) - len(ok)} failed)" if len(ok) < len(xs) else ""
    return f"{statistics.mean(ok):.3f} ± {sd:.3f}{failed}"
print(f"Search budget {steps} steps, longer budget {3 * steps} steps; mean ± SD over training seeds.\n")
for label, seeds in table.items():
    print(f"### {label}\n")
    print("| seed | search budget | longer budget |")
    print("| --- | --- | --- |")
    for seed, by in sorted(seeds.items()):
        print(f"| {seed} | {cell(by.get('1', []))} | {cell(by.get('3', []))} |")
    print()
EOF
