#!/usr/bin/env bash
# Issue 30's diagnostics (item 4; docs/results/principal_diagnostics.md), on the protocol
# of scripts/reproduce/principal_mends.sh (the paper's game with the paper_fast grid's
# settings, 400k game steps per run, eta 1 on apples, development seeds 100-102):
#   flat100             every bracket taxed at 100% from the start (scripted: cap 1)
#   flat100_curriculum  the same under the learned principal's curriculum
#                       (--scripted_curriculum: no tax for the first 20% of iterations,
#                       then the cap ramp): what the timing alone costs
#   start_full          the learned principal started at full tax in every bracket
#                       (probability 0.9 on level 10): does its gradient move it off?
#   late                the learned principal joining at 160k game steps
#                       (--players_only_fraction=0.4), after the commons collapse at
#                       96-160k rather than during it
# Measured: W over each run's second half; flat100_curriculum against flat100, and
# start_full and late against principal_mends.sh's base, paired by seed.
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU).
# Wall time: 34 min (8-9 min per run), alone on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=outputs/principal_diagnostics
GAME="--engine=jax --preset=fast --frame_stack=1 --num_envs=16 --rollout_fragment_length=200
      --num_iterations=125 --voting_rule=fixed:1 --welfare_on=apples --tax_cap_fraction=0.25
      --num_seeds=3 --seed=100"
.venv/bin/python scripts/train.py $GAME --principal=fixed:1,1,1 --output_dir=$OUT/flat100
.venv/bin/python scripts/train.py $GAME --principal=fixed:1,1,1 --scripted_curriculum \
    --output_dir=$OUT/flat100_curriculum
.venv/bin/python scripts/train.py $GAME --principal=learned --principal_init_no_tax=0.9 \
    --principal_init_level=10 --output_dir=$OUT/start_full
.venv/bin/python scripts/train.py $GAME --principal=learned --players_only_fraction=0.4 \
    --output_dir=$OUT/late

.venv/bin/python - "$OUT" outputs/principal_mends/base <<'EOF2'
import statistics
import sys

from sed_meltingpot.analysis.logged import logged_points, second_half_mean
from sed_meltingpot.runs.runlog import read_progress

out, base, seeds = sys.argv[1], sys.argv[2], (100, 101, 102)
folders = {"flat100": f"{out}/flat100", "flat100_curriculum": f"{out}/flat100_curriculum",
           "learned (base, principal_mends.sh)": base, "start_full": f"{out}/start_full",
           "late": f"{out}/late"}
w = {name: [second_half_mean(*logged_points(read_progress(f"{folder}/seed_{s}"),
                                            lambda r: r["utilitarian"])) for s in seeds]
     for name, folder in folders.items()}
print("| run | W, second half (seeds 100-102) | mean | paired difference |")
print("|---|---|---:|---|")
pairs = {"flat100_curriculum": "flat100", "start_full": "learned (base, principal_mends.sh)",
         "late": "learned (base, principal_mends.sh)"}
for name, values in w.items():
    other = pairs.get(name)
    diffs = [a - b for a, b in zip(values, w[other], strict=True)] if other else []
    print(f"| {name} | {', '.join(f'{x:.1f}' for x in values)} | "
          f"{statistics.mean(values):.1f} | "
          + (f"{statistics.mean(diffs):+.1f} from {other} "
             f"({', '.join(f'{d:+.1f}' for d in diffs)})" if other else "") + " |")
last = [read_progress(f"{out}/start_full/seed_{s}")[-1] for s in seeds]
print("start_full's requested rates at the end, per seed: " + "; ".join(
    "/".join(f"{r[f'principal_rate_b{b}']:.2f}" for b in range(3)) for r in last))
EOF2
