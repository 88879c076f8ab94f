#!/usr/bin/env bash
# Reproduces docs/results/small_designers/ (issue 30): the small grid (4 players,
# 200-step episodes, 120k game steps per run, seeds 0-4) with the two-timescale principals
# and the search principal, the negative control: on apples at eta 1 no tax beats
# flat100 (63.5 vs 51.2 in docs/results/small_apples_more), so a principal that sees the
# players' learning should choose rates near 0.
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU), other jobs beside it.
# Wall time: 41.3 min, beside two other calls and the test suite.
set -euo pipefail
cd "$(dirname "$0")/../.."

.venv/bin/python scripts/experiment.py --grid=small --engine=jax --num_workers=1 \
    --welfare_on=apples --objectives=eta=1 --principals=ucb,thompson,egreedy,search,none,flat100 \
    --output_dir=outputs/small_designers
