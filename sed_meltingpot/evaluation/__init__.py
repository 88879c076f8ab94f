"""Evaluate principals against baselines with frozen players.

A researcher compares what a trained principal does with what simple tax
policies do, on the same game with the same players. This module:

* loads a training run's checkpoint (`load_run`): its game settings, the
  players' types, the players' module and, if the run learned one, the
  principal's module;
* plays episodes through `SEDMultiAgentEnv` (`run_episode`), so players see
  exactly the observations they were trained on; every principal, a trained
  one (`ModulePrincipal`) included, is a `principals.Principal` that the env
  asks for rates at each period start; every metric is read from
  the game itself (`SEDGame.episode_metrics`, which uses
  `sed_meltingpot.core.welfare`); nothing the game records is recomputed here;
* evaluates named principals (trained, no tax, fixed schedules, random and
  the best fixed schedule found by `grid_search` against the frozen players)
  and summarises each metric by its mean and a 95% Student-t confidence
  interval over episodes (`summarize`, `student_t_quantile`);
* writes CSV and JSON and formats a table.

One module per job: `stats` (metrics, mean and t-interval), `policies` (who
acts), `runs` (loading a run of either engine), `episodes` (playing on the Lua
substrate), `search` (the best fixed schedule), `compare` (the comparison of
named principals), `report` (CSV, JSON, table). Their public names are
re-exported here.

The grid search runs on seeds disjoint from the final evaluation's, so the
best schedule's reported numbers are not inflated by picking the luckiest.
"""

from sed_meltingpot.evaluation.compare import PRINCIPAL_CHOICES, PrincipalResult, evaluate
from sed_meltingpot.evaluation.episodes import (
    PRINCIPAL_SEED_OFFSET,
    StepHook,
    evaluate_principal,
    make_env,
    run_episode,
)
from sed_meltingpot.evaluation.policies import (
    NUM_ACTIONS,
    PLAYER_CHOICES,
    GreedyApplePlayers,
    ModulePlayers,
    ModulePrincipal,
    PlayerPolicy,
    RandomPlayers,
    ScriptedPlayers,
    apple_tile_colour,
)
from sed_meltingpot.evaluation.report import format_table, result_keys, write_results
from sed_meltingpot.evaluation.runs import (
    CheckpointError,
    EvalSetup,
    LoadedRun,
    build_setup,
    find_run_config,
    load_run,
    load_setup,
    make_players,
    make_principal,
    trained_principal,
    with_fixed_types,
)
from sed_meltingpot.evaluation.search import (
    SEARCH_SEED_OFFSET,
    SearchResult,
    fmt_rates,
    grid_search,
    grid_size,
    rate_grid,
)
from sed_meltingpot.evaluation.stats import (
    METRIC_LABELS,
    METRICS,
    Stat,
    episode_scalars,
    mean_ci,
    student_t_cdf,
    student_t_quantile,
    summarize,
)

__all__ = [
    "METRICS", "METRIC_LABELS", "NUM_ACTIONS", "PLAYER_CHOICES", "PRINCIPAL_CHOICES",
    "PRINCIPAL_SEED_OFFSET", "SEARCH_SEED_OFFSET", "CheckpointError", "EvalSetup",
    "GreedyApplePlayers", "LoadedRun", "ModulePlayers", "ModulePrincipal", "PlayerPolicy",
    "PrincipalResult", "RandomPlayers", "ScriptedPlayers", "SearchResult", "Stat", "StepHook",
    "apple_tile_colour", "build_setup", "episode_scalars", "evaluate", "evaluate_principal",
    "find_run_config", "fmt_rates", "format_table", "grid_search", "grid_size", "load_run",
    "load_setup", "make_env", "make_players", "make_principal", "mean_ci", "rate_grid",
    "result_keys", "run_episode", "student_t_cdf", "student_t_quantile", "summarize",
    "trained_principal", "with_fixed_types", "write_results",
]
