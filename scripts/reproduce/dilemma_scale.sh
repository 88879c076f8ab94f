#!/usr/bin/env bash
# The commons dilemma at scale (issue 32, item 5; docs/results/dilemma_scale.md): no tax
# against flat100 (every bracket taxed at 100%, redistributed evenly) with 7, 128 and 32
# players on the twin, 3 seeds each (0-2, vmapped; paired: a seed has the same types,
# networks and games under both principals).
# The same players' data per iteration at every size (the players share one network):
# 7 players x 20 games, 128 x 1 game and 32 x 4 games of 200 steps, 28,000 / 25,600 /
# 25,600 rows per iteration, 125 iterations, the fast preset; so 500k / 25k / 100k game
# steps per run. 7 players play the paper's map, the others --map=generated (tiled patches
# of the paper's map, about 7 players per patch, the paper's regrowth rule).
# Measured: apples per player per episode, unsmoothed from the logged 20-episode window
# (sed_meltingpot/analysis/dilemma.py); per run its peak (the best mean of 5 consecutive
# iterations' episodes), its end (the last quarter's mean) and the fall between them
# (the collapse); the lever: flat100 - no tax over each run's second half, paired by seed.
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU).
# Wall time: 62 min (10-12 min per call of 3 seeds), the test suite beside it for part of it.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=outputs/dilemma_scale
# train PLAYERS GAMES [MAP FLAG]: no tax, then flat100, seeds 0-2 vmapped.
train() {
  for principal in none fixed:1,1,1; do
    .venv/bin/python scripts/train.py --engine=jax --preset=fast --principal=$principal \
        --num_players=$1 --num_envs=$2 ${3:-} --num_iterations=125 --num_seeds=3 --seed=0 \
        --output_dir=$OUT/n$1_${principal/fixed:1,1,1/flat100}
  done
}
train 128 1 --map=generated
train 7 20
train 32 4 --map=generated

.venv/bin/python - "$OUT" <<'EOF'
import csv
import statistics
import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from sed_meltingpot.analysis import dilemma
from sed_meltingpot.analysis.logged import second_half_mean
from sed_meltingpot.runs.runlog import read_progress
from sed_meltingpot.training.jax.trainer import SMOOTHING_EPISODES

out, sizes, seeds = sys.argv[1], (7, 32, 128), (0, 1, 2)
curves = {(n, p, s): dilemma.episode_values(read_progress(f"{out}/n{n}_{p}/seed_{s}"),
                                            SMOOTHING_EPISODES)
          for n in sizes for p in ("none", "flat100") for s in seeds}
with open(f"{out}/episodes.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["players", "principal", "seed", "game_steps", "apples_per_player"])
    for (n, p, s), (steps, values) in curves.items():
        writer.writerows([n, p, s, int(x), f"{v:.4f}"] for x, v in zip(steps, values))


def fmt(values):
    return f"{statistics.mean(values):.2f} ({', '.join(f'{v:.2f}' for v in values)})"


print("| players | principal | peak | end | fall (collapse) | second half |")
print("|---:|---|---|---|---|---|")
half = {}
for n in sizes:
    for p in ("none", "flat100"):
        shape = [dilemma.collapse(curves[n, p, s][1], smooth=5) for s in seeds]
        half[n, p] = [second_half_mean(*curves[n, p, s]) for s in seeds]
        print(f"| {n} | {p} | {fmt([c['peak'] for c in shape])} | "
              f"{fmt([c['end'] for c in shape])} | {fmt([c['fall'] for c in shape])} | "
              f"{fmt(half[n, p])} |")
print()
print("| players | lever: flat100 - none, second half (seeds 0-2) | relative to none |")
print("|---:|---|---:|")
for n in sizes:
    diffs = [a - b for a, b in zip(half[n, "flat100"], half[n, "none"], strict=True)]
    print(f"| {n} | {fmt(diffs)} | "
          f"{100 * statistics.mean(diffs) / statistics.mean(half[n, 'none']):+.0f}% |")

fig, axes = plt.subplots(1, len(sizes), figsize=(4 * len(sizes), 3.4), sharey=True)
for ax, n in zip(axes, sizes):
    for p, colour in (("none", "tab:blue"), ("flat100", "tab:orange")):
        for s in seeds:
            steps, values = curves[n, p, s]
            fraction = np.arange(1, len(values) + 1) / len(values)
            ax.plot(fraction, values, color=colour, alpha=0.8, lw=1,
                    label=p if s == 0 else None)
    ax.set_title(f"{n} players")
    ax.set_xlabel("fraction of training (125 iterations)")
axes[0].set_ylabel("apples per player per episode")
axes[0].legend()
fig.tight_layout()
fig.savefig(f"{out}/dilemma.png", dpi=110)
print(f"wrote {out}/episodes.csv and {out}/dilemma.png")
EOF
