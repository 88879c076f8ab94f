#!/usr/bin/env bash
# The lever analyses of docs/results/lever.md: random players (outputs not committed), then
# the trained players of the small_taxed grid's no-tax run, seed 0 (docs/results/
# lever_none_seed0_apples/ and lever_none_seed0_taxed/; the run comes from
# scripts/reproduce/small_taxed.sh). 1024 episodes per eta at eta 0, 0.5 and 1.
# Machine: the project's 2-core CPU machine (no GPU; jax 0.10.2 on CPU).
# Wall time: 15-30 s per random-player call, 2.5 min per trained-player call.
# The trained-player calls' settings are those their lever.md records (players, game,
# etas, episodes, seed); the rest are the script's defaults.
set -euo pipefail
cd "$(dirname "$0")/../.."

.venv/bin/python scripts/lever_analysis.py --players=random --num_players=4 --episode_length=200 \
    --tax_period=50 --welfare_on=apples --output_dir=outputs/lever_random_apples
.venv/bin/python scripts/lever_analysis.py --players=random --num_players=4 --episode_length=200 \
    --tax_period=50 --welfare_on=taxed --output_dir=outputs/lever_random_taxed
.venv/bin/python scripts/lever_analysis.py --run_dir=outputs/small_taxed/runs/none__seeds0-4/seed_0 \
    --welfare_on=apples --output_dir=outputs/lever_none_seed0_apples
.venv/bin/python scripts/lever_analysis.py --run_dir=outputs/small_taxed/runs/none__seeds0-4/seed_0 \
    --welfare_on=taxed --output_dir=outputs/lever_none_seed0_taxed
