#!/usr/bin/env bash
# Reproduces docs/results/small_sampled/ (page: docs/results/small_sampled.md): the small
# grid on post-tax income with the other schedules, best_fixed, the voted eta and the
# eta-conditioned (sampled) principal.
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU), beside another
# experiment for part of the time.
# Wall time: 37.8 min (learned, none, flat100 and a first sampled principal) + 27.5 min (the
# sampled principal with heads linear in eta, flat, regressive, best_fixed and the voted
# eta, with best_fixed's 9 fresh runs): the call ran in two steps as the code changed;
# one call of the command below trains everything.
set -euo pipefail
cd "$(dirname "$0")/../.."

.venv/bin/python scripts/experiment.py --grid=small --engine=jax --num_workers=1 \
    --welfare_on=taxed --objectives=eta=0,eta=0.5,eta=1,voted \
    --principals=learned,sampled,none,flat100,flat,regressive,best_fixed \
    --output_dir=outputs/small_sampled
