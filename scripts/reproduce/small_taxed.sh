#!/usr/bin/env bash
# Reproduces docs/results/small_taxed/ (page: docs/results/small_taxed.md): the small grid
# with the principal's recipe, eta 0, 0.5 and 1, six principals, both welfare definitions.
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU), other jobs beside it.
# Wall time: 49.9 min for the first command (taxed only: 40 runs in 8 jobs of 5 vmapped
# seeds); 18.9 min for the second (adds apples, reusing the scripted runs and the shared
# eta = 1 run, training 15 more). The committed folder is the --output_dir's results.
set -euo pipefail
cd "$(dirname "$0")/../.."

.venv/bin/python scripts/experiment.py --grid=small --engine=jax --num_workers=1 \
    --welfare_on=taxed --objectives=eta=0,eta=0.5,eta=1 \
    --principals=learned,sampled,none,progressive,flat100,random --output_dir=outputs/small_taxed
.venv/bin/python scripts/experiment.py --grid=small --engine=jax --num_workers=1 \
    --welfare_on=apples,taxed --objectives=eta=0,eta=0.5,eta=1 \
    --principals=learned,sampled,none,progressive,flat100,random --output_dir=outputs/small_taxed
