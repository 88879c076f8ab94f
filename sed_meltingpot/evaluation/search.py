"""The best fixed schedule against frozen players: a grid of schedules, each
scored by its mean objective over episodes on seeds disjoint from the final
evaluation's (`SEARCH_SEED_OFFSET`), so the winner's reported numbers are not
inflated by picking the luckiest."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence

from sed_meltingpot.evaluation.stats import mean_ci

# Seeds of the grid search are offset from the evaluation's, so the best
# schedule is judged on episodes it was not picked on.
SEARCH_SEED_OFFSET = 1_000_003
#: The most schedules a grid search builds: each is played for several episodes, so
#: 10,000 is already days on the Lua substrate (and 1000^3 would not fit in memory).
MAX_SCHEDULES = 10_000


def grid_size(resolution: int, num_brackets: int = 3, *, name: str = "grid resolution"
              ) -> int:
    """The number of schedules of `rate_grid(resolution, num_brackets)`, checked against
    MAX_SCHEDULES before any is built (ValueError with the count otherwise; `name`: how
    the message names the resolution, e.g. a script's flag)."""
    if resolution < 2:
        raise ValueError(f"{name}={resolution} must be >= 2 (0 and 1 at least)")
    count = resolution ** num_brackets
    if count > MAX_SCHEDULES:
        most = int(round(MAX_SCHEDULES ** (1 / num_brackets)))
        most -= most ** num_brackets > MAX_SCHEDULES  # the float root may overshoot by one
        fits = (f"{name} <= {most} with {num_brackets} brackets" if most >= 2 else
                f"no grid fits {num_brackets} brackets")
        raise ValueError(f"{name}={resolution} would build {count:,} schedules "
                         f"({resolution} rates in each of {num_brackets} brackets); the search "
                         f"builds at most {MAX_SCHEDULES:,} ({fits})")
    return count


def rate_grid(resolution: int, num_brackets: int = 3) -> list[tuple[float, ...]]:
    """All schedules with `resolution` evenly spaced rates in [0, 1] per
    bracket (resolution 2: {0, 1}^B), at most MAX_SCHEDULES (`grid_size`)."""
    grid_size(resolution, num_brackets)
    levels = [i / (resolution - 1) for i in range(resolution)]
    return list(itertools.product(levels, repeat=num_brackets))


@dataclasses.dataclass
class SearchResult:
    best_rates: tuple[float, ...]
    best_value: float
    objective: str
    table: list[tuple[tuple[float, ...], float]]  # (schedule, mean objective), grid order


def grid_search(evaluate: Callable[[tuple[float, ...]], Sequence[dict[str, float]]],
                schedules: Sequence[tuple[float, ...]], objective: str = "objective",
                progress: Callable[[str], None] | None = None) -> SearchResult:
    """The fixed schedule with the highest mean `objective` over the episodes
    `evaluate(schedule)` returns; ties go to the first in grid order."""
    table: list[tuple[tuple[float, ...], float]] = []
    for i, rates in enumerate(schedules):
        episodes = evaluate(tuple(rates))
        value = mean_ci(e[objective] for e in episodes).mean
        table.append((tuple(rates), value))
        if progress:
            progress(f"search {i + 1}/{len(schedules)}: rates {fmt_rates(rates)} "
                     f"{objective} {value:.3f}")
    finite = [(r, v) for r, v in table if math.isfinite(v)]
    if not finite:
        raise ValueError(f"no schedule gave a finite {objective!r}")
    best_rates, best_value = max(finite, key=lambda rv: rv[1])  # max keeps the first of ties
    return SearchResult(best_rates, best_value, objective, table)


def fmt_rates(rates: Sequence[float]) -> str:
    return "(" + ",".join(f"{r:.3g}" for r in rates) + ")"


