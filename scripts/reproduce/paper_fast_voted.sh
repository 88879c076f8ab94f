#!/usr/bin/env bash
# Reproduces docs/results/paper_fast_voted/ (page: docs/results/paper_fast_voted.md): the
# paper's game with the fast preset at the players' voted eta, both welfare definitions.
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU), beside another
# experiment for most of the time.
# Wall time: 76.0 min (5 jobs of 3 vmapped seeds).
set -euo pipefail
cd "$(dirname "$0")/../.."

.venv/bin/python scripts/experiment.py --grid=paper_fast --engine=jax --num_workers=1 \
    --principals=learned,none,flat100,progressive --objectives=voted \
    --output_dir=outputs/paper_fast_voted
