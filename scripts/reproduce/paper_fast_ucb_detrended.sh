#!/usr/bin/env bash
# Reproduces docs/results/paper_fast_ucb_detrended/ (issue 30; page
# docs/results/paper_fast_ucb_detrended.md): the paper's game with the fast preset at eta 1
# on apples, reported seeds 0-7, ucb ranking its arms by their effects net of a common
# quadratic trend over the principal steps (--ucb_detrend=2). Degree 2, fixed before the
# run: on the small grid a linear trend missed the players' concave rise
# (docs/results/small_ucb_detrended.md), and the fewest parameters that bend are two.
# Everything else is paper_fast_designers.sh's ucb, in the same vmapped groups (0-5, 6-7),
# so each pair by seed differs only in the score. Compared, paired by seed, with the
# committed ucb, none and flat100 rows of docs/results/paper_fast_designers/results.csv;
# Holm over the three comparisons. The two calls are pooled into
# outputs/paper_fast_ucb_detrended (committed as docs/results/paper_fast_ucb_detrended).
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU).
# Wall time: 33 min (27.3 and 5.4 min for the two calls), the test suite beside it for
# its first 30 min.
set -euo pipefail
cd "$(dirname "$0")/../.."

for seeds in 0-5 6-7; do
    .venv/bin/python scripts/experiment.py --grid=paper_fast --engine=jax --num_workers=1 \
        --principals=ucb --objectives=eta=1 --welfare_on=apples --ucb_detrend=2 \
        --seeds=$seeds --output_dir=outputs/paper_fast_ucb_detrended_s$seeds
done
.venv/bin/python scripts/pool_results.py \
    --inputs=outputs/paper_fast_ucb_detrended_s0-5,outputs/paper_fast_ucb_detrended_s6-7 \
    --objectives=eta=1 --welfare_on=apples --output_dir=outputs/paper_fast_ucb_detrended

.venv/bin/python - <<'EOF2'
from sed_meltingpot.experiment.rows import read_csv
from sed_meltingpot.experiment.stats import cell_rows, paired_family


def cells(path, principal):
    """{seed: (the schedule played, W_eta)} at eta 1 on apples, on the twin."""
    return {r["seed"]: (r["rates"], r["W_eta"])
            for r in cell_rows(read_csv(path), "eta=1", principal, "twin", "apples")}


detrended = cells("outputs/paper_fast_ucb_detrended/results.csv", "ucb")
committed = "docs/results/paper_fast_designers/results.csv"
others = {p: cells(committed, p) for p in ("ucb", "none", "flat100")}
print("| seed | ucb (detrended): schedule, W | ucb (means): schedule, W | none | flat100 |")
print("|---|---|---|---|---|")
for s in sorted(detrended):
    print(f"| {s} | {detrended[s][0]}: {detrended[s][1]:.1f} | {others['ucb'][s][0]}: "
          f"{others['ucb'][s][1]:.1f} | {others['none'][s][1]:.1f} | "
          f"{others['flat100'][s][1]:.1f} |")
tests = paired_family({s: v[1] for s, v in detrended.items()},
                      {p: {s: v[1] for s, v in other.items()} for p, other in others.items()})
print("| detrended - | diff | n | p | p (Holm) |")
print("|---|---|---|---|---|")
for p, t in tests.items():
    print(f"| {p} | {t['diff']:+.1f} | {t['n']} | {t['p']:.3f} | {t['p_holm']:.3f} |")
EOF2
