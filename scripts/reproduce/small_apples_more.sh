#!/usr/bin/env bash
# Reproduces docs/results/small_apples_more/ (page: docs/results/small_apples_more.md): the
# small grid on apples eaten with the other schedules, best_fixed and the voted eta.
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU), nothing else running.
# Wall time: 32.4 min from a clean clone (40 training runs, then best_fixed's 20 searches
# and 13 fresh runs of the schedules they chose).
set -euo pipefail
cd "$(dirname "$0")/../.."

.venv/bin/python scripts/experiment.py --grid=small --engine=jax --num_workers=1 \
    --welfare_on=apples --objectives=eta=0,eta=0.5,eta=1,voted \
    --principals=learned,none,flat100,flat,regressive,best_fixed \
    --output_dir=outputs/small_apples_more
