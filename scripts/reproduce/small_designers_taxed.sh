#!/usr/bin/env bash
# Reproduces docs/results/small_designers_taxed/ (issue 30): the small grid (4 players,
# 200-step episodes, 120k game steps per run, seeds 0-4) on post-tax income at eta 0, 0.5
# and 1 with the ucb bandit principal and the search principal (4 search seeds), beside
# no tax and flat100. The question: do the rates they choose fall as eta rises (from the
# egalitarian objective, which full redistribution serves, to the utilitarian one, where
# no tax beats flat100 in this grid)?
# The scripted runs (none, flat100, the flat 30% tax) and ucb's eta = 1 runs do not depend
# on the welfare definition; small_designers.sh trained them with these seeds and
# settings, so they are copied from its folder where it exists (otherwise trained here).
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU).
# Wall time: not run yet (about 60 min expected on an idle machine).
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=outputs/small_designers_taxed
mkdir -p $OUT/runs
for run in none flat100 fixed_0p3-0p3-0p3 ucb__eta1; do
    if [ -d outputs/small_designers/runs/${run}__seeds0-4 ] && [ ! -e $OUT/runs/${run}__seeds0-4 ]; then
        cp -r outputs/small_designers/runs/${run}__seeds0-4 $OUT/runs/
    fi
done
.venv/bin/python scripts/experiment.py --grid=small --engine=jax --num_workers=1 \
    --welfare_on=taxed --objectives=eta=0,eta=0.5,eta=1 --principals=ucb,search,none,flat100 \
    --search_seeds=4 --output_dir=$OUT
