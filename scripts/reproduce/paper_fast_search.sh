#!/usr/bin/env bash
# Reproduces the search principal's rows of docs/results/paper_fast_designers/ (issue 30):
# the Stackelberg search (experiment/searches.py) on the paper's game with the fast preset
# at eta 1 on apples: the 5 named schedules x 2 search seeds (900000, 900001) trained from
# scratch, the first cut at 62 of 125 iterations (flat100's gain over no tax shows
# 80k-160k game steps after it starts taxing), the better 2 resumed to 125; its choice
# then trained with fresh players on the reported seeds. The first command runs in the
# folder of scripts/reproduce/paper_fast_designers.sh's first command (seeds 6-7: every
# other principal's runs are reused there); the second starts from its finished search
# and trains the choice on seeds 0-5.
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU), other jobs beside it.
set -euo pipefail
cd "$(dirname "$0")/../.."

.venv/bin/python scripts/experiment.py --grid=paper_fast --engine=jax --num_workers=1 \
    --principals=learned,ucb,search,none,flat100,progressive --objectives=eta=1 \
    --welfare_on=apples --seeds=6-7 --output_dir=outputs/paper_fast_s67
mkdir -p outputs/paper_fast_search_s05
cp -r outputs/paper_fast_s67/searches outputs/paper_fast_search_s05/
.venv/bin/python scripts/experiment.py --grid=paper_fast --engine=jax --num_workers=1 \
    --principals=search --objectives=eta=1 --welfare_on=apples --seeds=0-5 \
    --output_dir=outputs/paper_fast_search_s05
