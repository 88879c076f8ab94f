"""The commons dilemma at scale (issue 32, item 5): per-episode apples per player from a
run's training log, and what they say of the collapse and of the tax's lever.

The trainers log each episode figure as the mean of the last `window` finished episodes
(20, the RLlib path's metrics window, `training.jax.trainer.SMOOTHING_EPISODES`). With
one game a 128-player run of the same players' data per iteration as a 7-player run of
20 games finishes one episode every 5 iterations, so that window would span 100
iterations: `episode_values` undoes it. The window's sum moves by the new episodes less
the dropped ones, so when every logged iteration ends the same number c of episodes and
c divides the window, each iteration's new episodes have an exactly recoverable mean
(the dropped ones are whole earlier iterations, already recovered).

Pure numpy on progress records (`runs.runlog.read_progress`); no jax.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

Record = Mapping[str, Any]


def apples_per_player(record: Record) -> float:
    """The mean over players of the logged apples per episode (`apples_p<i>`)."""
    values = [v for k, v in record.items() if k.startswith("apples_p")]
    if not values:
        raise ValueError("record has no apples_p<i> figures")
    return float(np.mean(values))


def episode_values(records: Sequence[Record], window: int,
                   value: Callable[[Record], float] = apples_per_player
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(game steps, value) of each logged iteration's finished episodes, unsmoothed.

    `value(record)` is a figure logged as the mean over the last `window` episodes (a
    linear one: the mean of per-episode figures). Returns one point per iteration that
    ended episodes: the game steps at its end and its new episodes' mean. Raises
    ValueError where that mean is not exactly recoverable: iterations ending different
    numbers of episodes, or a number that does not divide `window`."""
    logged = [r for r in records if r.get("episodes_this_iter", 0) > 0]
    if not logged:
        return np.zeros(0), np.zeros(0)
    counts = {int(r["episodes_this_iter"]) for r in logged}
    c = counts.pop()
    if counts or window % c:
        raise ValueError(f"episodes per iteration {sorted(counts | {c})} must be one "
                         f"number that divides the window ({window})")
    groups: list[float] = []  # recovered mean of each iteration's c episodes
    steps: list[float] = []
    previous_sum, seen = 0.0, 0
    for r in logged:
        held_before = min(seen, window)
        seen += c
        held = min(seen, window)
        window_sum = value(r) * held
        dropped_episodes = held_before + c - held  # a multiple of c: whole groups
        first = (seen - c - held_before) // c  # the oldest group still in the window
        dropped = sum(groups[first: first + dropped_episodes // c]) * c
        groups.append((window_sum - previous_sum + dropped) / c)
        steps.append(float(r["game_steps"]))
        previous_sum = window_sum
    return np.asarray(steps), np.asarray(groups)


def collapse(values: np.ndarray, smooth: int) -> dict[str, float]:
    """The peak of a run's curve (the largest mean of `smooth` consecutive points), its
    end (the mean of the last quarter) and the fall between them."""
    values = np.asarray(values, dtype=float)
    if len(values) < max(smooth, 4):
        raise ValueError(f"{len(values)} points: need at least {max(smooth, 4)}")
    moving = np.convolve(values, np.ones(smooth) / smooth, mode="valid")
    peak = float(moving.max())
    end = float(values[-max(1, len(values) // 4):].mean())
    return {"peak": peak, "end": end, "fall": peak - end,
            "peak_at": float((int(moving.argmax()) + smooth / 2) / len(values))}

