#!/usr/bin/env bash
# Reproduces docs/results/small_search_least_tax/ (issue 30; page
# docs/results/small_search_least_tax.md): the negative control (the small grid at eta 1
# on apples, where no tax beats flat100) for the search principal with 16 search seeds
# (900,000-900,015) and the least-tax choice rule (--search_choice=least_tax: the
# least-taxing schedule within one paired standard error of the best on the search
# seeds). With 4 search seeds and the best-score rule the search chose the flat 30% tax
# (docs/results/small_designers_taxed.md). Fixed before the run: the target is the
# issue's (every rate of the choice within 0.2 of 0; its W within noise of no tax on the
# reported seeds 0-4, paired t); the best-score rule's choice on the same rungs is
# printed beside it (does the seed count alone fix it?), with each candidate's paired
# lead over no tax on the search seeds (every rung's: added after the run, as no tax
# was cut at the first rung).
# First, a check on committed data (seconds): does the search's window score rank no tax
# and the flat 30% tax as the held-out evaluation does, on the reported seeds?
# The scripted runs (none, flat100, the flat 30% tax) were trained by small_designers.sh
# with these seeds and settings, so they are copied from its folder where it exists
# (otherwise trained here).
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU).
# Wall time: 28.7 min (the search 26.2 min: 16 x 5 schedules to 60k game steps, then
# 16 x 2 to 120k; its choice trained on the reported seeds), alone on the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."

.venv/bin/python - <<'EOF2'
import csv
import statistics

from sed_meltingpot.experiment.rows import read_csv
from sed_meltingpot.experiment.stats import seed_values

# The last rung trains 75 -> 150 iterations and is scored on its last half: the run's
# last quarter (game steps > 90,000 of 120,000), here from the logged 20-episode means.
curves = {}
with open("docs/results/small_apples_more/learning_curves.csv") as f:
    for r in csv.DictReader(f):
        if r["objective"] == "eta=1" and r["welfare_on"] == "apples" \
                and int(r["game_steps"]) > 90_000:
            curves.setdefault((r["principal"], int(r["seed"])), []).append(float(r["W_eta"]))
rows = read_csv("docs/results/small_apples_more/results.csv")
held_out = {p: seed_values(rows, "eta=1", p, "W_eta", "twin", "apples") for p in ("none", "flat")}
print("| seed | none - flat 30%: window | held-out evaluation |")
print("|---|---|---|")
window, evaluation = [], []
for s in range(5):
    window.append(statistics.mean(curves["none", s]) - statistics.mean(curves["flat", s]))
    evaluation.append(held_out["none"][s] - held_out["flat"][s])
    print(f"| {s} | {window[-1]:+.1f} | {evaluation[-1]:+.1f} |")
print(f"| mean | {statistics.mean(window):+.1f} | {statistics.mean(evaluation):+.1f} |")
EOF2

OUT=outputs/small_search_least_tax
mkdir -p $OUT/runs
for run in none flat100 fixed_0p3-0p3-0p3; do
    if [ -d outputs/small_designers/runs/${run}__seeds0-4 ] && [ ! -e $OUT/runs/${run}__seeds0-4 ]; then
        cp -r outputs/small_designers/runs/${run}__seeds0-4 $OUT/runs/
    fi
done
.venv/bin/python scripts/experiment.py --grid=small --engine=jax --num_workers=1 \
    --welfare_on=apples --objectives=eta=1 --principals=search,none,flat100 \
    --search_seeds=16 --search_choice=least_tax --output_dir=$OUT

.venv/bin/python - "$OUT" <<'EOF2'
import json
import math
import statistics
import sys

from sed_meltingpot.design.halving import choose
from sed_meltingpot.experiment.rows import read_csv
from sed_meltingpot.experiment.stats import paired_test, seed_values

out = sys.argv[1]
found = json.load(open(f"{out}/searches/search__eta1/search.json"))
last = found["rungs"][-1]
candidates = [tuple(c) for c in last["candidates"]]
for rule in ("least_tax", "best"):
    print(f"{rule}: chose {candidates[choose(rule, candidates, last['seed_scores'])]}")
for k, rung in enumerate(found["rungs"]):  # each schedule's paired lead over no tax
    names = [tuple(c) for c in rung["candidates"]]
    none = names.index((0.0, 0.0, 0.0)) if (0.0, 0.0, 0.0) in names else None
    print(f"rung {k + 1}, {len(rung['seed_scores'][0])} search seeds, {rung['budget']} "
          f"iterations, kept {[tuple(c) for c in rung['kept']]}:")
    for c, s in zip(names, rung["seed_scores"], strict=True):
        line = f"  {c}: W {statistics.mean(s):.1f}"
        if none is not None and c != names[none]:
            d = [a - b for a, b in zip(s, rung["seed_scores"][none], strict=True)]
            line += (f", minus none {statistics.mean(d):+.1f} "
                     f"(se {statistics.stdev(d) / math.sqrt(len(d)):.1f})")
        print(line)
print(f"game steps spent: {found['game_steps']:,}")
rows = read_csv(f"{out}/results.csv")
w = {p: seed_values(rows, "eta=1", p, "W_eta", "twin", "apples")
     for p in ("search", "none", "flat100")}
rates = {r["seed"]: r["rates"] for r in rows if r["principal"] == "search"}
print("| seed | search: rates, W | none | flat100 |")
print("|---|---|---|---|")
for s in sorted(w["search"]):
    print(f"| {s} | {rates[s]}: {w['search'][s]:.1f} | {w['none'][s]:.1f} | "
          f"{w['flat100'][s]:.1f} |")
for p in ("none", "flat100"):
    t = paired_test(w["search"], w[p])
    print(f"search - {p}: {t['diff']:+.1f}, n {t['n']}, p {t['p']:.3f}")
EOF2
