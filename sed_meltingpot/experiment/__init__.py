"""The results experiment (issues 10, 16): does a learned principal beat the baselines?

The logic of `scripts/experiment.py`, one module per job:

* `grid`: what is run: the grids (`GRIDS`), welfare definitions, objectives
  (`OBJECTIVES`), principals (`PRINCIPALS`) and seeds;
* `plan`: which runs are trained and which cells each serves (`plan_training`,
  `plan_evaluation`, `plan_best_fixed`);
* `rows`: one row of results.csv (one per definition, objective, principal, seed and
  substrate), W_eta under both definitions, CSV I/O;
* `stats`: the statistics over training seeds: mean and 95% Student-t interval per
  cell (`evaluation.mean_ci`), paired t-tests by seed with signed-rank checks, Holm's
  correction within each (definition, objective);
* `curves`: learning curves and what the runs' training logs show;
* `report`: results.md;
* `figures`: learning curves, an equality-productivity scatter and the sampled
  principal's rates against eta (PNG);
* `summary`: the results page's summary over the committed calls (learned against the
  best baseline per grid, definition and objective; a forest plot), for
  `scripts/results_summary.py`; not re-exported here;
* `engines`: the training engines (RLlib on the Lua substrate, JAX on the twin) and
  where they play episodes;
* `jobs`: the jobs that train and evaluate the runs, cached, here or as Ray tasks.

The unit of replication is the training seed: each row is the mean over the
evaluation episodes of one trained run, played on held-out seeds (`EVAL_SEED`, far
from every training seed) that are the same for every principal, so all principals
are judged in the same worlds.

The pure modules' public names are re-exported here (`import
sed_meltingpot.experiment as ex` as before); `engines` and `jobs` are not imported
here (import them where runs are trained or evaluated). Nothing here imports JAX,
Ray, torch, scipy or matplotlib at import time.
"""

from __future__ import annotations

from collections.abc import Callable

from sed_meltingpot.evaluation import SEARCH_SEED_OFFSET
from sed_meltingpot.experiment.curves import (
    EGALITARIAN_KEYS,
    Panels,
    band,
    budget_quarters,
    last_period_rates,
    objective_curve,
    panel_curve,
    write_learning_curves,
)
from sed_meltingpot.experiment.figures import (
    plot_equality_productivity,
    plot_learning_curves,
    plot_rates_vs_eta,
)
from sed_meltingpot.experiment.grid import (
    BASELINES,
    BEST_FIXED,
    DEFAULT_WELFARE_ON,
    EVAL_SEED,
    GRIDS,
    JAX_ONLY,
    LEARNED,
    LEARNERS,
    MAX_TRAIN_SEED,
    OBJECTIVES,
    PRINCIPALS,
    RATE_ETAS,
    SAMPLED,
    SCHEDULES,
    SCRIPTED,
    SCRIPTED_TRAINING_RULE,
    SEARCH,
    SUBSTRATE_LUA,
    SUBSTRATE_TWIN,
    TWO_TIMESCALE,
    Grid,
    check_seeds,
    check_welfare_on,
    eta_label,
    eta_of,
    format_rates,
    parse_seeds,
    principal_spec,
    rule_of,
)
from sed_meltingpot.experiment.plan import (
    EvalItem,
    Search,
    TrainTask,
    learned_welfare_on,
    plan_best_fixed,
    plan_evaluation,
    plan_training,
    sampled_objectives,
)
from sed_meltingpot.experiment.report import (
    TABLE_METRICS,
    cell_label,
    definition_heading,
    format_stat,
    results_markdown,
)
from sed_meltingpot.experiment.rows import (
    DEFINITION_COLUMNS,
    DEFINITION_LABELS,
    ID_COLUMNS,
    RENAME,
    check_objective,
    definition_of,
    episode_welfare,
    episodes_row,
    metric_columns,
    non_finite,
    pool_rows,
    read_csv,
    read_experiment_json,
    write_csv,
)
from sed_meltingpot.experiment.stats import (
    cell_rows,
    cell_values,
    comparisons,
    holm,
    paired_family,
    paired_test,
    rates_by_eta,
    seed_values,
    transfer_gaps,
    welch_test,
)

#: A progress callback (a line of text), as `engines.Log`.
ProgressFn = Callable[[str], None]

__all__ = ["BASELINES", "BEST_FIXED", "DEFAULT_WELFARE_ON", "DEFINITION_COLUMNS",
           "DEFINITION_LABELS", "EGALITARIAN_KEYS", "EVAL_SEED", "EvalItem", "GRIDS", "Grid",
           "ID_COLUMNS", "JAX_ONLY", "LEARNED", "LEARNERS", "MAX_TRAIN_SEED", "OBJECTIVES",
           "PRINCIPALS", "Panels", "ProgressFn", "RATE_ETAS", "RENAME", "SAMPLED", "SCHEDULES",
           "SCRIPTED", "SCRIPTED_TRAINING_RULE", "SEARCH", "SEARCH_SEED_OFFSET", "SUBSTRATE_LUA",
           "SUBSTRATE_TWIN", "Search", "TABLE_METRICS", "TWO_TIMESCALE", "TrainTask", "band",
           "budget_quarters",
           "cell_label", "cell_rows", "cell_values", "check_objective", "check_seeds",
           "check_welfare_on", "comparisons", "definition_heading", "definition_of",
           "episode_welfare", "episodes_row", "eta_label", "eta_of", "format_rates", "format_stat",
           "holm", "last_period_rates", "learned_welfare_on", "metric_columns", "non_finite",
           "objective_curve", "paired_family", "paired_test", "panel_curve", "parse_seeds",
           "plan_best_fixed",
           "plan_evaluation", "plan_training", "pool_rows", "plot_equality_productivity",
           "plot_learning_curves", "plot_rates_vs_eta", "principal_spec", "rates_by_eta",
           "read_csv", "read_experiment_json", "results_markdown", "rule_of",
           "sampled_objectives", "seed_values", "transfer_gaps", "welch_test", "write_csv",
           "write_learning_curves"]
