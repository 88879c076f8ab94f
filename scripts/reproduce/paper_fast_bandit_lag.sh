#!/usr/bin/env bash
# Reproduces the tables of docs/results/paper_fast_bandit_lag.md (issue 30): why the
# two-timescale bandits tie no tax in the paper's game, measured on committed data only
# (no training). (1) How a tax held from the start moves W over time: flat100 - none per
# 32,000-game-step window (one ucb principal step), paired by seed, on the 12 fresh seeds
# of the search replication (docs/results/paper_fast_search_replication). (2) What a
# 10-iteration block of tax does inside a ucb run: the step scores of the 8 committed
# plain ucb runs (docs/results/paper_fast_ucb/designer, paper_fast_s67/designer),
# regressed on the mean rate of the arm held at the step and at the 2, 3 or 4 steps
# before, with a dummy per step (the players' drift) and per run; all three lag lengths
# are shown, none chosen. Descriptive: the ucb runs are the ones whose failure this
# explains.
# Machine: the project's 2-core CPU machine (reads committed files only).
# Wall time: seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."

.venv/bin/python - <<'EOF2'
import csv
import glob
import json
import statistics

import numpy as np

STEP = 32_000  # game steps of one ucb principal step (10 iterations x 16 games x 200)
curves, last = {}, 0
with open("docs/results/paper_fast_search_replication/learning_curves.csv") as f:
    for r in csv.DictReader(f):
        if r["objective"] == "eta=1" and r["welfare_on"] == "apples":
            steps = int(r["game_steps"])  # the logged mean of the episodes ended by then
            key = (r["principal"], int(r["seed"]), (steps - 1) // STEP)
            curves.setdefault(key, []).append(float(r["W_eta"]))
            last = max(last, steps)
seeds = sorted({s for _, s, _ in curves})
print(f"flat100 - none over training, {len(seeds)} seeds paired")
print("| game steps | none | flat100 - none | se | seeds |")
print("|---|---|---|---|---|")
for w in range(max(k for _, _, k in curves) + 1):
    pairs = [(statistics.mean(curves["flat100", s, w]), statistics.mean(curves["none", s, w]))
             for s in seeds if ("flat100", s, w) in curves and ("none", s, w) in curves]
    d = [a - b for a, b in pairs]
    se = statistics.stdev(d) / len(d) ** 0.5
    print(f"| {w * STEP // 1000}-{min(last, (w + 1) * STEP) // 1000}k | "
          f"{statistics.mean(b for _, b in pairs):.1f} | {statistics.mean(d):+.1f} | "
          f"{se:.1f} | {len(d)} |")

runs = []
for path in sorted(glob.glob("docs/results/paper_fast_ucb/designer/seed_*.json")
                   + glob.glob("docs/results/paper_fast_s67/designer/seed_*.json")):
    steps = json.load(open(path))["steps"]
    runs.append(([float(np.mean(s["arm"])) for s in steps], [s["score"] for s in steps]))
num_steps = len(runs[0][0])
print(f"\n{len(runs)} ucb runs of {num_steps} steps; score on the mean rate held k steps before")
print("| lags | k = 0 | k = 1 | k = 2 | k = 3 | k = 4 | sum | residual sd | n |")
print("|---|---|---|---|---|---|---|---|---|")
for lags in (2, 3, 4):
    x, y = [], []
    for i, (rates, scores) in enumerate(runs):
        for t in range(lags, num_steps):  # steps with every lag inside the run
            step = [float(t == u) for u in range(lags, num_steps)]
            run = [float(i == j) for j in range(1, len(runs))]
            x.append(step + run + [rates[t - k] for k in range(lags + 1)])
            y.append(scores[t])
    x, y = np.asarray(x), np.asarray(y)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    dof = len(y) - np.linalg.matrix_rank(x)
    var = resid @ resid / dof
    se = np.sqrt(np.diag(var * np.linalg.pinv(x.T @ x)))
    ones = np.zeros(x.shape[1])
    ones[-(lags + 1):] = 1.0
    sum_se = float(np.sqrt(ones @ (var * np.linalg.pinv(x.T @ x)) @ ones))
    cells = [f"{b:+.1f} ({s:.1f})" for b, s in zip(beta[-(lags + 1):], se[-(lags + 1):],
                                                    strict=True)]
    cells += [""] * (4 - lags)
    print(f"| 0-{lags} | {' | '.join(cells)} | {beta[-(lags + 1):].sum():+.1f} ({sum_se:.1f}) "
          f"| {np.sqrt(var):.1f} | {len(y)} |")
EOF2
