#!/usr/bin/env bash
# Reproduces docs/results/paper_fast_800k/ (issue 30; page docs/results/paper_fast_800k.md):
# the paper's game with the fast preset at eta 1 on apples at a longer budget, 800k game
# steps per run (250 iterations, twice the grid's 400k), for the search (its defaults: the
# five named schedules on search seeds 900,000-900,001, first cut at half the budget, the
# best-score rule), none and flat100 on reported seeds 0-7. Fixed before the run: the
# seeds, the budget, 32 held-out evaluation episodes per run, and the tests - search -
# none and search - flat100, paired t-tests with Holm over the two (issue 30's target:
# the search above no tax at Holm p < 0.05 and not below flat100). Printed beside them as
# a description: flat100 - none over training in 80k-game-step windows (does flat100's
# lead shrink late, as over the first 6 seeds at 400k?). Each call resumes: finished runs
# and search rungs are reused.
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU).
# Wall time: so far none 67.9 min (beside the test suite) and flat100 41.4 min (alone);
# the search (5.6M game steps, about an hour alone) remains.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=outputs/paper_fast_800k
.venv/bin/python scripts/experiment.py --grid=paper_fast --engine=jax --num_workers=1 \
    --principals=search,none,flat100 --objectives=eta=1 --welfare_on=apples \
    --num_iterations=250 --seeds=0-7 --output_dir=$OUT

.venv/bin/python - "$OUT" <<'EOF2'
import csv
import statistics
import sys

from sed_meltingpot.experiment.rows import read_csv
from sed_meltingpot.experiment.stats import paired_family, seed_values

out = sys.argv[1]
rows = read_csv(f"{out}/results.csv")
w = {p: seed_values(rows, "eta=1", p, "W_eta", "twin", "apples")
     for p in ("search", "none", "flat100")}
rates = {r["seed"]: r["rates"] for r in rows if r["principal"] == "search"}
print("| seed | search: rates, W | none | flat100 |")
print("|---|---|---|---|")
for s in sorted(w["search"]):
    print(f"| {s} | {rates[s]}: {w['search'][s]:.1f} | {w['none'][s]:.1f} | "
          f"{w['flat100'][s]:.1f} |")
tests = paired_family(w["search"], {p: w[p] for p in ("none", "flat100")})
print("| search - | diff | n | p | p (Holm) |")
print("|---|---|---|---|---|")
for p, t in tests.items():
    print(f"| {p} | {t['diff']:+.1f} | {t['n']} | {t['p']:.4f} | {t['p_holm']:.4f} |")

WINDOW = 80_000
curves = {}
with open(f"{out}/learning_curves.csv") as f:
    for r in csv.DictReader(f):
        if r["objective"] == "eta=1" and r["welfare_on"] == "apples":
            key = (r["principal"], int(r["seed"]), (int(r["game_steps"]) - 1) // WINDOW)
            curves.setdefault(key, []).append(float(r["W_eta"]))
print("| game steps | none | flat100 - none | se |")
print("|---|---|---|---|")
for k in range(max(k for _, _, k in curves) + 1):
    seeds = [s for s in range(8) if ("none", s, k) in curves and ("flat100", s, k) in curves]
    d = [statistics.mean(curves["flat100", s, k]) - statistics.mean(curves["none", s, k])
         for s in seeds]
    print(f"| {k * WINDOW // 1000}-{(k + 1) * WINDOW // 1000}k | "
          f"{statistics.mean(statistics.mean(curves['none', s, k]) for s in seeds):.1f} | "
          f"{statistics.mean(d):+.1f} | {statistics.stdev(d) / len(d) ** 0.5:.1f} |")
EOF2
