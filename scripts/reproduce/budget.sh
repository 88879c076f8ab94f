#!/usr/bin/env bash
# The 4x-budget check of docs/results/budget/ (page: docs/results/budget.md): the learned
# principal and no tax at the voted eta, 600 iterations (480,000 game steps) per run.
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU), idle.
# Wall time: 38.9 min.
# The committed numbers predate the principal's recipe, the second welfare definition and
# the grid's 64 evaluation episodes (it had 4): today's code runs the same check with the
# recipe, so the learned rows and the evaluation will differ from the committed ones.
set -euo pipefail
cd "$(dirname "$0")/../.."

.venv/bin/python scripts/experiment.py --grid=small --engine=jax --num_iterations=600 \
    --objectives=voted --principals=learned,none --seeds=0-2 --output_dir=outputs/budget_check
