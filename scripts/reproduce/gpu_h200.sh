#!/usr/bin/env bash
# The GPU check and the paper preset's training of docs/results/gpu_h200/ (page:
# docs/results/gpu_h200.md), run from a copy of the repository with the device's own
# Python 3.12 (jax with CUDA, flax, optax, numpy; nothing else installed).
# Machine: one NVIDIA H200 (jax 0.11.2, flax 0.12.10, 16 CPU cores).
# Wall time: 235 s for gpu_check (its slots shrunk by --budget_seconds to fit the
# session's device time), 4.1 min for gpu_train (two runs side by side on the one GPU).
set -euo pipefail
cd "$(dirname "$0")/../.."

python3 scripts/gpu_check.py --json=gpu_check.json --budget_seconds=235
python3 scripts/gpu_train.py --num_iterations=165 --seconds=275 --output_dir=/tmp/gpu_train
