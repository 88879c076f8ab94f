#!/usr/bin/env bash
# The PPO principal's mends, each alone against the recipe as it is (issue 30, item 3;
# docs/results/principal_mends.md): the paper's game (7 players, 1000-step episodes) with
# the paper_fast grid's settings (fast preset, 1 frame, 16 games x 200 steps, 125
# iterations = 400k game steps, cap ramp over a quarter of phase 2), eta 1 on apples
# (W = the players' apples per episode), the learned principal under
#   base      the recipe's defaults (phase 1 = the first 20% of iterations)
#   separate  --principal_value_net=separate (a value tower with its own clip and Adam)
#   floor     --principal_entropy_floor=1.0 (nats per bracket; uniform is 2.40)
#   separate_lr  separate with --principal_lr=1e-2 (ten times the recipe's), added after
#             the first three were measured: separate's policy stayed near uniform, as
#             if its gradient moved it too little (fixed before its run: this one lr)
# (The third mend, the curriculum's timing, is a diagnostic first:
# scripts/reproduce/principal_diagnostics.sh.)
# Development seeds 100-102 (vmapped; paired: a seed has the same types, networks and
# games in every variant), disjoint from the reported seeds 0-7 and the search's
# 900,000+, so that a mend chosen here is then reported on seeds it was not chosen on.
# Measured: W over each run's second half (the logged 20-episode means), the principal's
# last-iteration bracket entropies and requested rates; each mend's paired difference
# from base. Three seeds check for a large effect only; a kept mend is then run on the
# reported seeds.
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU).
# Wall time: 38.4 min (9-15 min per variant) for the first three, the test suite beside
# it for most of it; separate_lr 14 min, the test suite beside it for its last 12.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=outputs/principal_mends
GAME="--engine=jax --preset=fast --frame_stack=1 --num_envs=16 --rollout_fragment_length=200
      --num_iterations=125 --voting_rule=fixed:1 --welfare_on=apples --tax_cap_fraction=0.25
      --principal=learned --num_seeds=3 --seed=100"
train() {  # a variant's three runs, unless all three finished (train.py refuses a
    local name=$1; shift  # folder that holds a run: a partial one stops the script)
    if [ ! -e $OUT/$name/seed_100/summary.json ] || [ ! -e $OUT/$name/seed_101/summary.json ] \
            || [ ! -e $OUT/$name/seed_102/summary.json ]; then
        .venv/bin/python scripts/train.py $GAME "$@" --output_dir=$OUT/$name
    fi
}
train base
train separate --principal_value_net=separate
train floor --principal_entropy_floor=1.0
train separate_lr --principal_value_net=separate --principal_lr=1e-2

.venv/bin/python - "$OUT" <<'EOF'
import statistics
import sys

from sed_meltingpot.analysis.logged import logged_points, second_half_mean
from sed_meltingpot.runs.runlog import read_progress

out, seeds = sys.argv[1], (100, 101, 102)
variants = ("base", "separate", "floor", "separate_lr")


def second_half_w(records):
    return second_half_mean(*logged_points(records, lambda r: r["utilitarian"]))


runs = {(v, s): read_progress(f"{out}/{v}/seed_{s}") for v in variants for s in seeds}
w = {v: [second_half_w(runs[v, s]) for s in seeds] for v in variants}
print("| variant | W, second half (seeds 100-102) | mean | paired difference from base |"
      " bracket entropies at the end | requested rates at the end |")
print("|---|---|---:|---|---|---|")
for v in variants:
    diffs = [a - b for a, b in zip(w[v], w["base"], strict=True)]
    last = [runs[v, s][-1] for s in seeds]
    entropies = "; ".join("/".join(f"{r[f'principal_entropy_b{b}']:.2f}" for b in range(3))
                          for r in last)
    rates = "; ".join("/".join(f"{r[f'principal_rate_b{b}']:.2f}" for b in range(3))
                      for r in last)
    print(f"| {v} | {', '.join(f'{x:.1f}' for x in w[v])} | {statistics.mean(w[v]):.1f} | "
          + ("" if v == "base" else f"{statistics.mean(diffs):+.1f} "
             f"({', '.join(f'{d:+.1f}' for d in diffs)})")
          + f" | {entropies} | {rates} |")
EOF
