#!/usr/bin/env bash
# Reproduces docs/results/paper_fast/ (seeds 0-2), docs/results/paper_fast_s3/ (seeds 3-5)
# and docs/results/paper_fast_pooled/ (all six at eta 1 on apples); page:
# docs/results/paper_fast.md. The paper's game with the fast preset.
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU), other jobs beside
# it for most of the time.
# Wall time: 102.9 min for seeds 0-2 (in two calls: the first also planned the voted
# objective and was stopped after the learned runs; the second reused them); 45.5 min for
# seeds 3-5; the pooling reads no runs (seconds). The first command's folder is the one
# committed as docs/results/paper_fast, which the pooling reads.
set -euo pipefail
cd "$(dirname "$0")/../.."

.venv/bin/python scripts/experiment.py --grid=paper_fast --engine=jax --num_workers=1 \
    --principals=learned,none,flat100,progressive --objectives=eta=0,eta=1 \
    --output_dir=outputs/paper_fast
.venv/bin/python scripts/experiment.py --grid=paper_fast --engine=jax --num_workers=1 \
    --principals=learned,none,flat100,progressive --objectives=eta=1 --welfare_on=apples \
    --seeds=3-5 --output_dir=outputs/paper_fast_s3p
.venv/bin/python scripts/pool_results.py --inputs=docs/results/paper_fast,outputs/paper_fast_s3p \
    --objectives=eta=1 --principals=learned,none,flat100,progressive --welfare_on=apples \
    --output_dir=outputs/paper_fast_pooled
