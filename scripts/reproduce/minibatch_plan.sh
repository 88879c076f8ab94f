#!/usr/bin/env bash
# The learning comparison of the players' minibatch plans (issue 32, item 2; docs/
# training-jax.md#comparing-the-plans): does planning the players' PPO minibatches by
# count (--num_minibatches, PureJaxRL style: fewer, larger Adam steps per epoch) learn as
# well per game step as today's plan by size (--minibatch_size=256, 87 steps per epoch)?
# Fast preset on the paper's game and map (7 players, 1000-step episodes), no tax (the
# plan changes the players' training; no principal to confound it), 16 games x 200 steps
# = 3,200 game steps per iteration, 125 iterations = 400,000 game steps per run, seeds
# 0-2 vmapped (paired: a seed has the same types, networks and games under every plan).
# Measured: the players' apples per episode (the sum of apples_p<i>, the last 20
# episodes' mean as logged) averaged over the logged iterations of each run's second
# half, per plan and seed, and each count plan's paired difference from the size plan.
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU).
# Wall time: 41.5 min (12-16 min per plan), the test suite beside it for most of it.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=outputs/minibatch_plan
.venv/bin/python scripts/train.py --engine=jax --preset=fast --principal=none --num_envs=16 \
    --num_iterations=125 --num_seeds=3 --seed=0 --output_dir=$OUT/size
.venv/bin/python scripts/train.py --engine=jax --preset=fast --principal=none --num_envs=16 \
    --num_iterations=125 --num_seeds=3 --seed=0 --num_minibatches=4 --output_dir=$OUT/mb4
.venv/bin/python scripts/train.py --engine=jax --preset=fast --principal=none --num_envs=16 \
    --num_iterations=125 --num_seeds=3 --seed=0 --num_minibatches=16 --output_dir=$OUT/mb16

.venv/bin/python - "$OUT" <<'EOF'
import statistics
import sys

from sed_meltingpot.analysis.logged import logged_points, second_half_mean
from sed_meltingpot.runs.runlog import read_progress

out, plans, seeds = sys.argv[1], ("size", "mb4", "mb16"), (0, 1, 2)


def second_half_apples(run: str) -> float:
    return second_half_mean(*logged_points(read_progress(run), lambda r: sum(
        v for k, v in r.items() if k.startswith("apples_p"))))


apples = {p: [second_half_apples(f"{out}/{p}/seed_{s}") for s in seeds] for p in plans}
print("| plan | apples per episode, seeds 0-2 | mean | paired difference from size |")
print("|---|---|---:|---|")
for p in plans:
    diffs = [a - b for a, b in zip(apples[p], apples["size"], strict=True)]
    print(f"| {p} | {', '.join(f'{a:.1f}' for a in apples[p])} | "
          f"{statistics.mean(apples[p]):.1f} | "
          + ("" if p == "size" else f"{statistics.mean(diffs):+.1f} "
             f"({', '.join(f'{d:+.1f}' for d in diffs)})") + " |")
EOF
