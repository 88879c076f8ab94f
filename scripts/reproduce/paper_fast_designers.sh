#!/usr/bin/env bash
# Reproduces docs/results/paper_fast_designers/ (issue 30; page:
# docs/results/paper_fast_designers.md): the paper's game with the fast preset at eta 1 on
# apples, eight reported seeds (0-7), the principals that see the players' learning
# against the baselines. Fixed before the runs: UCB as the bandit of this grid (Large
# Legislative Models' best on Commons Harvest; thompson and egreedy run on the small grid
# only), the search over the five named schedules (2 search seeds from 900000, first cut
# at 62 of 125 iterations: flat100's gain over no tax shows 80k-160k game steps after it
# starts taxing), the seeds, the budget (the grid's 400k game steps per run) and the
# paired t-tests with Holm's correction.
# 1. Seeds 6-7: learned, ucb, none, flat100, progressive (seeds 0-5 of learned, none,
#    flat100 and progressive are the committed docs/results/paper_fast and paper_fast_s3).
# 2. ucb on seeds 0-5.
# 3. The search, in the first call's folder (its other runs are reused there), and its
#    choice trained on seeds 6-7.
# 4. The choice trained on seeds 0-5 (the finished search is copied, so it answers from
#    its file).
# 5. The pooling of all of them (reads no runs).
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU), with other jobs
# (tests, a second call) beside it throughout.
# Wall time: 37.7 min for each of the first two calls (run side by side), 42.7 min for the
# third (the search), 39.5 min for the fourth (beside the small grid), seconds for the pooling.
set -euo pipefail
cd "$(dirname "$0")/../.."

.venv/bin/python scripts/experiment.py --grid=paper_fast --engine=jax --num_workers=1 \
    --principals=learned,ucb,none,flat100,progressive --objectives=eta=1 --welfare_on=apples \
    --seeds=6-7 --output_dir=outputs/paper_fast_s67
.venv/bin/python scripts/experiment.py --grid=paper_fast --engine=jax --num_workers=1 \
    --principals=ucb --objectives=eta=1 --welfare_on=apples \
    --seeds=0-5 --output_dir=outputs/paper_fast_ucb
.venv/bin/python scripts/experiment.py --grid=paper_fast --engine=jax --num_workers=1 \
    --principals=learned,ucb,search,none,flat100,progressive --objectives=eta=1 \
    --welfare_on=apples --seeds=6-7 --output_dir=outputs/paper_fast_s67
mkdir -p outputs/paper_fast_search_s05
cp -r outputs/paper_fast_s67/searches outputs/paper_fast_search_s05/
.venv/bin/python scripts/experiment.py --grid=paper_fast --engine=jax --num_workers=1 \
    --principals=search --objectives=eta=1 --welfare_on=apples --seeds=0-5 \
    --output_dir=outputs/paper_fast_search_s05
.venv/bin/python scripts/pool_results.py \
    --inputs=docs/results/paper_fast,docs/results/paper_fast_s3,outputs/paper_fast_s67,outputs/paper_fast_ucb,outputs/paper_fast_search_s05 \
    --objectives=eta=1 --welfare_on=apples --output_dir=outputs/paper_fast_designers
