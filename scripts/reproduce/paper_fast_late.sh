#!/usr/bin/env bash
# Reproduces docs/results/paper_fast_late/ (issue 30; page docs/results/paper_fast_late.md):
# the PPO principal's one change that met the mends' rule on development seeds
# (docs/results/principal_diagnostics.md: above the recipe on every seed), joining after
# the commons collapse (--players_only_fraction=0.4: at 160k of 400k game steps, after
# the collapse at 96-160k), on the paper_fast grid's reported seeds 0-7 at eta 1 on
# apples. The seeds run in the groups the committed learned runs were vmapped in (0-2,
# 3-5, 6-7), so each pair differs only in the principal's start. Compared, paired by
# seed, with the committed learned (the recipe), none and flat100 rows of
# docs/results/paper_fast_designers/results.csv; Holm over the three comparisons. The
# three calls are pooled into outputs/paper_fast_late (committed as docs/results/paper_fast_late).
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU).
# Wall time: 22.5 min (8.7, 8.3 and 5.3 min for the three calls), alone on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/../.."

for seeds in 0-2 3-5 6-7; do
    .venv/bin/python scripts/experiment.py --grid=paper_fast --engine=jax --num_workers=1 \
        --principals=learned --objectives=eta=1 --welfare_on=apples \
        --players_only_fraction=0.4 --seeds=$seeds --output_dir=outputs/paper_fast_late_s$seeds
done
.venv/bin/python scripts/pool_results.py \
    --inputs=outputs/paper_fast_late_s0-2,outputs/paper_fast_late_s3-5,outputs/paper_fast_late_s6-7 \
    --objectives=eta=1 --welfare_on=apples --output_dir=outputs/paper_fast_late

.venv/bin/python - <<'EOF2'
from sed_meltingpot.experiment.rows import read_csv
from sed_meltingpot.experiment.stats import paired_family, seed_values


def w(path, principal):
    """{seed: W_eta} at eta 1 on apples, on the twin."""
    return seed_values(read_csv(path), "eta=1", principal, "W_eta", "twin", "apples")


late = w("outputs/paper_fast_late/results.csv", "learned")
committed = "docs/results/paper_fast_designers/results.csv"
others = {p: w(committed, p) for p in ("learned", "none", "flat100")}
print("| seed | late | learned (recipe) | none | flat100 |")
print("|---|---|---|---|---|")
for s in sorted(late):
    print(f"| {s} | {late[s]:.1f} | " + " | ".join(f"{others[p][s]:.1f}" for p in others) + " |")
print("| late - | diff | n | p | p (Holm) |")
print("|---|---|---|---|---|")
for p, t in paired_family(late, others).items():
    print(f"| {p} | {t['diff']:+.1f} | {t['n']} | {t['p']:.3f} | {t['p_holm']:.3f} |")
EOF2
