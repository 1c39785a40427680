#!/usr/bin/env bash
# The bench/compare.sh comparison on a GPU: autoarch built with `--features gpu` (burn's wgpu
# backend over Vulkan) against PyTorch eager on CUDA.
#
# On a machine with registries:   bash bench/gpu.sh
# On a GPU machine without them: build here first, then carry the binaries and a PyTorch
# install (or use the machine's own), and point the script at them:
#   STEP_BIN=path/to/step_time AUTOARCH=path/to/autoarch VENV=/path/with/torch bash bench/gpu.sh
# Needs libvulkan.so.1 and the NVIDIA Vulkan ICD at run time. burn compiles and autotunes its
# kernels on first use (tens of seconds per new shape), so the warm-up steps are slow; the
# medians exclude them.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEVICE=gpu FEATURES="--features autoarch-evaluator/gpu,autoarch-agent/gpu"
export STEPS=${STEPS:-50}
exec bash bench/compare.sh
