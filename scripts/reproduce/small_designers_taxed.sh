#!/usr/bin/env bash
# Reproduces docs/results/small_designers_taxed/ (issue 30): the small grid (4 players,
# 200-step episodes, 120k game steps per run, seeds 0-4) on post-tax income at eta 0, 0.5
# and 1 with the ucb bandit principal and the search principal (4 search seeds), beside
# no tax and flat100. The question: do the rates they choose fall as eta rises (from the
# egalitarian objective, which full redistribution serves, to the utilitarian one, where
# no tax beats flat100 in this grid)?
# The scripted runs (none, flat100, the flat 30% tax) and ucb's eta = 1 runs do not depend
# on the welfare definition; small_designers.sh trained them with these seeds and
# settings, so they are copied from its folder where it exists (otherwise trained here).
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU).
# Wall time: 40.9 min (15 of 35 runs trained, the others copied), the test suite beside
# it for its first 29 min.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=outputs/small_designers_taxed
mkdir -p $OUT/runs
for run in none flat100 fixed_0p3-0p3-0p3 ucb__eta1; do
    if [ -d outputs/small_designers/runs/${run}__seeds0-4 ] && [ ! -e $OUT/runs/${run}__seeds0-4 ]; then
        cp -r outputs/small_designers/runs/${run}__seeds0-4 $OUT/runs/
    fi
done
.venv/bin/python scripts/experiment.py --grid=small --engine=jax --num_workers=1 \
    --welfare_on=taxed --objectives=eta=0,eta=0.5,eta=1 --principals=ucb,search,none,flat100 \
    --search_seeds=4 --output_dir=$OUT

.venv/bin/python - "$OUT" <<'EOF2'
import statistics
import sys

from sed_meltingpot.experiment.rows import read_csv
from sed_meltingpot.experiment.stats import cell_rows, paired_test

rows = read_csv(f"{sys.argv[1]}/results.csv")
etas = ("eta=0", "eta=0.5", "eta=1")


def mean_rate(row):
    """The schedule's mean rate over the brackets (no tax: 0)."""
    return statistics.mean(float(x or 0) for x in row["rates"].split(","))


print("| principal | " + " | ".join(etas) + " |")
print("|---|---|---|---|")
rates = {}
for p in ("ucb", "search"):
    rates[p] = {o: {r["seed"]: mean_rate(r) for r in cell_rows(rows, o, p, "twin", "taxed")}
                for o in etas}
    print(f"| {p} | " + " | ".join(
        f"{statistics.mean(rates[p][o].values()):.2f} ("
        + ", ".join(f"{v:.2f}" for _, v in sorted(rates[p][o].items())) + ")"
        for o in etas) + " |")
test = paired_test(rates["ucb"]["eta=0"], rates["ucb"]["eta=1"])
print(f"ucb's mean rate, eta 0 - eta 1: {test['diff']:+.2f} over {test['n']} seeds, "
      f"paired t p = {test['p']:.3f}")
EOF2
