"""The designer interface: what every principal algorithm above a trainer offers.

Why a designer at all: the paper's principal is a leader (Section 4, Eq. 7: it picks
the tax phi maximising W(phi, pi(phi)), the welfare once the players have learned their
response pi(phi) to it). A same-timescale learner sees W only through players that are
still adapting; a designer instead commits to a schedule, lets a trainer run the players
under it, and is told the welfare they reached. That is the loop of the two-timescale
principals in Large Legislative Models (Gasztowtt et al. 2024) and of a Stackelberg
search over schedules; both talk to the trainer through `Designer` only.

A schedule is a tuple of tax rates in [0, 1], one per bracket (three in the paper's
game). A discrete designer's arms are a tuple of schedules in a fixed order, so that
its state (counts, means) lines up with `arms` index by index.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

#: One tax rate per bracket, each in [0, 1].
Schedule = tuple[float, ...]


@runtime_checkable
class Designer(Protocol):
    """A principal algorithm that proposes schedules and learns from their scores.

    The trainer's loop is `s = d.propose(rng)`, train the players under `s`, then
    `d.observe(s, W)`; `d.best()` is the designer's answer when the budget is spent.
    The randomness comes from the caller's `rng`, so a run is reproducible from its
    seed and a designer holds no hidden generator.
    """

    def propose(self, rng: np.random.Generator) -> Schedule:
        """The schedule to try next (the designer's state is unchanged)."""
        ...

    def observe(self, schedule: Schedule, score: float) -> None:
        """Record that the players trained under `schedule` reached welfare `score`."""
        ...

    def best(self) -> Schedule:
        """The schedule the designer would commit to now."""
        ...


def check_arms(arms: Sequence[Sequence[float]]) -> tuple[Schedule, ...]:
    """`arms` as a tuple of float tuples, after checking them.

    Raises a one-line ValueError unless there is at least one arm, all arms have the
    same number of brackets (at least one), every rate is in [0, 1] and no arm repeats
    (a repeated arm would split its pulls and its statistics in two).
    """
    out = tuple(tuple(float(r) for r in arm) for arm in arms)
    if not out:
        raise ValueError("arms must hold at least one schedule, got none")
    width = len(out[0])
    if width == 0 or any(len(arm) != width for arm in out):
        raise ValueError(f"arms must all have the same number (>= 1) of rates, got "
                         f"{sorted({len(arm) for arm in out})}")
    for arm in out:
        if not all(0.0 <= r <= 1.0 for r in arm):
            raise ValueError(f"arms' rates must be in [0, 1], got {arm}")
    if len(set(out)) != len(out):
        raise ValueError("arms must be distinct, got a repeated schedule")
    return out


def arm_grid(levels: Sequence[float] = (0.0, 0.5, 1.0), brackets: int = 3
             ) -> tuple[Schedule, ...]:
    """Every schedule whose rates are drawn from `levels`: `len(levels) ** brackets` arms.

    The default is the issue's {0, 0.5, 1}^3 grid (27 arms). The order is fixed, the
    lexicographic order of `itertools.product` with bracket 0 varying slowest:
    (0, 0, 0), (0, 0, 0.5), (0, 0, 1), (0, 0.5, 0), ..., (1, 1, 1); so an arm's index
    means the same in every run and every table.
    """
    if isinstance(brackets, bool) or not isinstance(brackets, int) or brackets < 1:
        raise ValueError(f"brackets must be an integer >= 1, got {brackets!r}")
    values = tuple(float(v) for v in levels)
    if not values or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"levels must be one or more rates in [0, 1], got {tuple(levels)}")
    if len(set(values)) != len(values):
        raise ValueError(f"levels must be distinct, got {values}")
    return tuple(itertools.product(values, repeat=brackets))
