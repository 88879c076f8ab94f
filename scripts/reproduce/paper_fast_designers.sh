#!/usr/bin/env bash
# Reproduces docs/results/paper_fast_designers/ (issue 30): the paper's game with the fast
# preset at eta 1 on apples, eight reported seeds (0-7). The two-timescale UCB principal
# (pre-declared as the bandit of this grid: UCB gave Large Legislative Models' highest
# payoff on Commons Harvest; thompson and egreedy are compared on the small grid only)
# on seeds 0-7, and learned, none, flat100 and progressive on seeds 6-7; seeds 0-5 of
# those come from docs/results/paper_fast (0-2) and docs/results/paper_fast_s3 (3-5),
# pooled by the last command.
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU), other jobs beside it.
set -euo pipefail
cd "$(dirname "$0")/../.."

.venv/bin/python scripts/experiment.py --grid=paper_fast --engine=jax --num_workers=1 \
    --principals=learned,ucb,none,flat100,progressive --objectives=eta=1 --welfare_on=apples \
    --seeds=6-7 --output_dir=outputs/paper_fast_s67
.venv/bin/python scripts/experiment.py --grid=paper_fast --engine=jax --num_workers=1 \
    --principals=ucb --objectives=eta=1 --welfare_on=apples \
    --seeds=0-5 --output_dir=outputs/paper_fast_ucb
