"""The `search` principal's first stage: one Stackelberg search per objective.

Why a stage of its own: the search (`design/search.py`) judges each candidate schedule
by the welfare of players trained from scratch under it (the paper's leader, Section 4,
Eq. 7), on seeds of its own range (from `design.search.SEARCH_SEED_START`), disjoint
from the reported seeds. Its choice is then trained with fresh players on every
reported seed and evaluated like every principal, as best_fixed's choice is
(`plan.plan_best_fixed`, reusing a scripted run of the same schedule and seed). A
search's runs do not depend on the reported seeds, so the same grid and objective give
the same search in every call (a call may start from another call's `searches/` folder:
it resumes, and a finished search answers from its file).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from sed_meltingpot.design.protocol import check_arms
from sed_meltingpot.design.two_timescale import NAMED_ARMS
from sed_meltingpot.experiment.engines import Engine, Log, task_recipe, train_game
from sed_meltingpot.experiment.grid import SEARCH, Grid
from sed_meltingpot.experiment.plan import Search, TrainTask, learned_welfare_on

SEARCHES_DIR = "searches"


def search_budget(grid: Grid) -> int:
    """The first rung's budget in iterations: `grid.stackelberg_first_cut` of the run's."""
    return max(1, round(grid.stackelberg_first_cut * grid.twin_iterations))


def grid_search_seeds(grid: Grid, reported: Sequence[int] = ()) -> tuple[int, ...]:
    """The grid's search seeds (`stackelberg_seeds` of them from `stackelberg_seed_start`,
    or from `design.search.SEARCH_SEED_START`), checked disjoint from `reported`: a call
    checks them against its reported seeds before it trains anything."""
    from sed_meltingpot.design.search import SEARCH_SEED_START, search_seeds

    start = SEARCH_SEED_START if grid.stackelberg_seed_start is None \
        else grid.stackelberg_seed_start
    try:
        return search_seeds(grid.stackelberg_seeds, reported, start=start)
    except ValueError as e:
        raise ValueError(f"--search_seed_start={start} --search_seeds="
                         f"{grid.stackelberg_seeds}: {e}") from None


def search_arguments(engine: Engine, grid: Grid, objective: str, welfare_on: str
                     ) -> dict[str, Any]:
    """`design.search.search`'s arguments for one objective and definition (the config
    the candidates train with: the grid's jax run of a scripted principal)."""
    from sed_meltingpot.design.search import SEARCH_SEED_START
    from sed_meltingpot.training.jax.ppo import TwinTrainConfig

    task = TrainTask(SEARCH, objective, SEARCH_SEED_START, welfare_on)
    config = TwinTrainConfig(game=train_game(grid, task), train=engine.train_config(grid, task),
                             num_envs=grid.num_envs, rollout_length=grid.rollout_length,
                             recipe=task_recipe(grid, task)).validate()
    first = search_budget(grid)
    return {"config": config, "min_budget": first, "first_cut_budget": first,
            "candidates": check_arms(NAMED_ARMS[grid.stackelberg_candidates]),
            "seeds": grid_search_seeds(grid), "reduction": 2,
            "max_budget": grid.twin_iterations, "window": grid.stackelberg_window,
            "choice": grid.stackelberg_choice}


def run_searches(engine: Engine, grid: Grid, output_dir: str, objectives: Sequence[str],
                 welfare_on: Sequence[str], seeds: Sequence[int], log: Log
                 ) -> tuple[list[Search], list[str]]:
    """Runs (or resumes) the search of every objective (per definition, one shared at
    eta 1 as the learned runs are) under `output_dir`/searches/; returns one `Search`
    per reported seed with the schedule chosen, and a line per search for results.md
    (its choice, rungs and the game steps it spent)."""
    if engine.name != "jax":
        raise ValueError(f"principal {SEARCH!r} trains only with --engine=jax")
    from sed_meltingpot.design.search import search

    found, lines = [], []
    for o in objectives:
        for w in dict.fromkeys(learned_welfare_on(o, x) for x in welfare_on):
            defs = tuple(x for x in welfare_on if learned_welfare_on(o, x) == w)
            arguments = search_arguments(engine, grid, o, w)
            folder = os.path.join(output_dir, SEARCHES_DIR,
                                  TrainTask(SEARCH, o, 0, w).group)
            log(f"search {o} ({w}): {len(arguments['candidates'])} candidates x "
                f"{len(arguments['seeds'])} seeds {arguments['seeds']}, first cut at "
                f"{arguments['first_cut_budget']} of {grid.twin_iterations} iterations; {folder}")
            result = search(**arguments, reported_seeds=seeds, output_dir=folder, print_fn=log)
            last = result.rungs[-1]
            value = last.scores[last.candidates.index(tuple(result.chosen))]
            found += [Search(o, defs, s, tuple(result.chosen), value) for s in seeds]
            rungs = "; ".join(f"{len(r.candidates)} x {r.budget} iterations" for r in result.rungs)
            lines.append(f"{o} ({', '.join(defs)}): chose {tuple(result.chosen)} "
                         f"({arguments['choice']}; W_eta "
                         f"{value:.1f} on the search seeds {list(result.seeds)}); rungs "
                         f"{rungs}; {result.game_steps:,} game steps")
    return found, lines

