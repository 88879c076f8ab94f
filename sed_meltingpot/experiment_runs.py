"""Compatibility module: running the results experiment moved into the package
`sed_meltingpot.experiment`.

The engines (the `Engine` protocol, `RllibEngine`, `JaxEngine`, the twin and Lua
episode evaluation, `get_engine`) are `sed_meltingpot.experiment.engines`; the jobs
(`Job`, `make_jobs`, `plan_jobs`, `best_fixed_jobs`, `run_job`, `run_jobs`,
`evaluate_run`, the evaluation cache) are `sed_meltingpot.experiment.jobs`. This
module re-exports their public names, the same objects (so `ENGINES` here is the
engines' registry), for one release; import those modules instead. The twin's random
principal draws (`random_principal_keys`, `random_levels`) are `sed_meltingpot.twin.play`,
served here lazily (that module imports JAX); `game_from_run_config` and
`twin_obs_settings` gave way to `sed_meltingpot.runs.run_record.read_run`.
"""

from typing import Any

from sed_meltingpot.experiment.engines import (
    ENGINES,
    Engine,
    JaxEngine,
    Log,
    LuaEvaluator,
    PrincipalSpec,
    RllibEngine,
    StreamRandomPrincipal,
    get_engine,
    lua_episodes,
    lua_scalars,
    task_recipe,
    twin_episodes,
)
from sed_meltingpot.experiment.jobs import (
    BEST_FIXED_EVAL_FILE,
    EVAL_FILE,
    EVAL_FORMAT,
    RUNS_DIR,
    Job,
    best_fixed_jobs,
    evaluate_run,
    is_trained,
    make_jobs,
    plan_jobs,
    run_job,
    run_jobs,
)

__all__ = ["BEST_FIXED_EVAL_FILE", "ENGINES", "EVAL_FILE", "EVAL_FORMAT", "RUNS_DIR", "Engine",
           "JaxEngine", "Job", "Log", "LuaEvaluator", "PrincipalSpec", "RllibEngine",
           "StreamRandomPrincipal", "best_fixed_jobs", "evaluate_run",
           "get_engine", "is_trained", "lua_episodes", "lua_scalars", "make_jobs", "plan_jobs",
           "run_job", "run_jobs", "task_recipe",
           "twin_episodes"]


_TWIN_PLAY_NAMES = frozenset({"random_levels", "random_principal_keys"})


def __getattr__(name: str) -> Any:
    if name in _TWIN_PLAY_NAMES:
        from sed_meltingpot.twin import play

        return getattr(play, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
