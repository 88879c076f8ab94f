#!/usr/bin/env bash
# Reproduces docs/results/small_search_no_cut/ (issue 30; page
# docs/results/small_search_no_cut.md): the negative control (the small grid at eta 1 on
# apples, where no tax beats flat100) for the search principal with no cut
# (--search_first_cut=1.0: every schedule trained to the full 150 iterations on every
# search seed) and the least-tax choice rule, on 16 fresh search seeds (910,000-910,015).
# Fixed before the run. Why no cut: with the first cut at half the budget
# (docs/results/small_search_least_tax.md, search seeds 900,000-900,015) no tax trailed
# the moderate taxes by about two standard errors at 75 iterations and was cut, while on
# the reported seeds the moderate taxes tie no tax at the end of a run; the least-tax
# rule can keep no tax only if no tax reaches the last rung. Fresh search seeds, as that
# change was made on the earlier ones. The target is the issue's: every rate of the
# choice within 0.2 of 0, and its W within noise of no tax on the reported seeds 0-4
# (paired t, p >= 0.05). Printed beside it: the best-score rule's choice on the same
# rung, and each schedule's paired lead over no tax on the search seeds.
# The scripted runs (none, flat100) were trained by small_designers.sh with these seeds
# and settings, so they are copied from its folder where it exists (otherwise trained
# here).
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU).
# Wall time: 41.8 min (the search 39.4 min: 16 x 5 schedules to 120k game steps; its
# choice trained on the reported seeds), tests beside it for about 8 of those minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=outputs/small_search_no_cut
mkdir -p $OUT/runs
for run in none flat100; do
    if [ -d outputs/small_designers/runs/${run}__seeds0-4 ] && [ ! -e $OUT/runs/${run}__seeds0-4 ]; then
        cp -r outputs/small_designers/runs/${run}__seeds0-4 $OUT/runs/
    fi
done
.venv/bin/python scripts/experiment.py --grid=small --engine=jax --num_workers=1 \
    --welfare_on=apples --objectives=eta=1 --principals=search,none,flat100 \
    --search_seeds=16 --search_seed_start=910000 --search_first_cut=1.0 \
    --search_choice=least_tax --output_dir=$OUT

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
(rung,) = found["rungs"]  # no cut: one rung
candidates = [tuple(c) for c in rung["candidates"]]
for rule in ("least_tax", "best"):
    print(f"{rule}: chose {candidates[choose(rule, candidates, rung['seed_scores'])]}")
none = candidates.index((0.0, 0.0, 0.0))
print(f"{len(rung['seed_scores'][0])} search seeds, {rung['budget']} iterations:")
for c, s in zip(candidates, rung["seed_scores"], strict=True):
    d = [a - b for a, b in zip(s, rung["seed_scores"][none], strict=True)]
    se = statistics.stdev(d) / math.sqrt(len(d)) if c != candidates[none] else 0.0
    print(f"  {c}: W {statistics.mean(s):.1f}, minus none {statistics.mean(d):+.1f} (se {se:.1f})")
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
