#!/usr/bin/env bash
# Reproduces docs/results/small_ucb_detrended/ (issue 30: a drift-robust bandit score): the
# small grid's negative control (apples at eta 1, where no tax beats flat100; seeds 0-4)
# with ucb ranking its arms by their effects net of a common linear trend over the
# principal steps (--ucb_detrend=1) instead of their mean scores. Everything else is
# small_designers.sh's ucb, so the pairs by seed differ only in the score: the same
# players, games and arm order, the same first five steps (each arm once).
# The scripted runs (none, flat100) are copied from small_designers.sh's folder where it
# exists (otherwise trained here); the comparison with plain ucb reads the committed
# docs/results/small_designers/results.csv.
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU).
# Wall time: 2.8 min (the 5 ucb runs vmapped; none and flat100 copied), the test suite
# beside it for its last minute.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=outputs/small_ucb_detrended
mkdir -p $OUT/runs
for run in none flat100; do
    if [ -d outputs/small_designers/runs/${run}__seeds0-4 ] && [ ! -e $OUT/runs/${run}__seeds0-4 ]; then
        cp -r outputs/small_designers/runs/${run}__seeds0-4 $OUT/runs/
    fi
done
.venv/bin/python scripts/experiment.py --grid=small --engine=jax --num_workers=1 \
    --welfare_on=apples --objectives=eta=1 --principals=ucb,none,flat100 --ucb_detrend=1 \
    --output_dir=$OUT

.venv/bin/python - "$OUT" <<'EOF2'
import sys

from sed_meltingpot.experiment.rows import read_csv
from sed_meltingpot.experiment.stats import cell_rows, paired_test

out = sys.argv[1]


def cells(path, principal):
    """{seed: (the schedule played, W_eta)} at eta 1 on apples, on the twin."""
    return {r["seed"]: (r["rates"], r["W_eta"])
            for r in cell_rows(read_csv(path), "eta=1", principal, "twin", "apples")}


plain = cells("docs/results/small_designers/results.csv", "ucb")
detrended = cells(f"{out}/results.csv", "ucb")
none = cells(f"{out}/results.csv", "none")
print("| seed | ucb (means): schedule, W | ucb (detrended): schedule, W | none: W |")
print("|---|---|---|---|")
for s in sorted(detrended):
    print(f"| {s} | {plain[s][0]}: {plain[s][1]:.1f} | {detrended[s][0]}: "
          f"{detrended[s][1]:.1f} | {none[s][1]:.1f} |")
for name, other in (("ucb (means)", plain), ("none", none)):
    test = paired_test({s: v[1] for s, v in detrended.items()},
                       {s: v[1] for s, v in other.items()})
    print(f"detrended - {name}: {test['diff']:+.1f} over {test['n']} seeds, paired t p = "
          f"{test['p']:.3f}")
EOF2
