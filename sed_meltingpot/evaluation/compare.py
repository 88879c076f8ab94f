"""One comparison: each named principal played with the same players in the
same worlds (episode k seeded seed + k), the best fixed schedule included."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from sed_meltingpot.core import tax
from sed_meltingpot.evaluation.episodes import evaluate_principal
from sed_meltingpot.evaluation.policies import PlayerPolicy
from sed_meltingpot.evaluation.runs import EvalSetup, with_fixed_types
from sed_meltingpot.evaluation.search import (
    SEARCH_SEED_OFFSET,
    SearchResult,
    fmt_rates,
    grid_search,
    rate_grid,
)
from sed_meltingpot.evaluation.stats import METRICS, Stat, summarize
from sed_meltingpot.game.principals import FixedRates, Principal, parse_principal

PRINCIPAL_CHOICES = ("trained", "none", "fixed", "random", "best_fixed")


@dataclasses.dataclass
class PrincipalResult:
    """Per-episode scalars and their summary for one principal."""

    name: str
    description: str
    episodes: list[dict[str, float]]
    summary: dict[str, Stat]



def evaluate(setup: EvalSetup, players: PlayerPolicy, *, principals: Sequence[str],
             num_episodes: int, seed: int = 0, trained: Principal | None = None,
             fixed: Sequence[Sequence[float]] = (), grid_resolution: int = 3,
             search_episodes: int | None = None, objective: str = "objective",
             max_steps: int | None = None, print_fn: Callable[[str], None] | None = print
             ) -> tuple[list[PrincipalResult], SearchResult | None]:
    """Evaluates each of `principals` (names in PRINCIPAL_CHOICES; "fixed"
    expands to one entry per schedule in `fixed`; "trained" plays `trained`,
    e.g. `runs.trained_principal`)."""
    unknown = [p for p in principals if p not in PRINCIPAL_CHOICES]
    if unknown:
        raise ValueError(f"unknown principals {unknown}; choose from {PRINCIPAL_CHOICES}")
    if "trained" in principals and trained is None:
        raise ValueError("principal 'trained' needs a checkpoint of a run with a learned "
                         "principal")
    if "fixed" in principals and not fixed:
        raise ValueError("principal 'fixed' needs at least one schedule")
    if objective not in METRICS:
        raise ValueError(f"objective={objective!r} must be one of {METRICS}")
    say = print_fn or (lambda s: None)
    setup = with_fixed_types(setup, seed)
    b = setup.game.num_brackets
    n_search = search_episodes or num_episodes
    results: list[PrincipalResult] = []
    search: SearchResult | None = None

    def scripted(spec: str) -> Principal:
        return parse_principal(spec, num_brackets=b, rate_levels=setup.game.rate_levels)

    def run(name: str, description: str, principal: Principal) -> None:
        say(f"evaluating {name}: {description}")
        episodes = evaluate_principal(setup, players, principal, num_episodes=num_episodes,
                                      seed=seed, max_steps=max_steps)
        results.append(PrincipalResult(name, description, episodes, summarize(episodes)))

    for name in principals:
        if name == "trained":
            run("trained", "the run's learned principal", trained)
        elif name == "none":
            run("none", "no tax", scripted("none"))
        elif name == "random":
            run("random", "uniform random rate levels each period", scripted("random"))
        elif name == "fixed":
            for rates in fixed:
                rates = [float(r) for r in rates]
                run(f"fixed{fmt_rates(rates)}", "fixed schedule",
                    FixedRates(tax.validate_rates(rates, b, "fixed schedule")))
        elif name == "best_fixed":
            grid = rate_grid(grid_resolution, b)
            say(f"grid search: {len(grid)} schedules x {n_search} episodes, by {objective}")

            def evaluate_schedule(rates: tuple[float, ...]) -> list[dict[str, float]]:
                return evaluate_principal(setup, players, FixedRates(rates),
                                          num_episodes=n_search,
                                          seed=seed + SEARCH_SEED_OFFSET, max_steps=max_steps)

            search = grid_search(evaluate_schedule, grid, objective, progress=say)
            run(f"best_fixed{fmt_rates(search.best_rates)}",
                f"best of {len(grid)} fixed schedules by {objective} (on separate seeds)",
                FixedRates(search.best_rates))
    return results, search

