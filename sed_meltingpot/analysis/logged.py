"""Figures read from a run's training log (progress.jsonl records), for the comparisons
of the reproduce scripts (scripts/reproduce/*.sh): the points of a logged episode figure
and their mean over the run's second half.

A record carries episode figures only when episodes ended in its iteration
(`episodes_this_iter` > 0); the others repeat the last ones (runlog.ProgressLog), so
they are left out here rather than counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

Record = Mapping[str, Any]


def logged_points(records: Sequence[Record], value: Callable[[Record], float]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(game steps, value(record)) of the iterations that ended episodes."""
    kept = [r for r in records if r.get("episodes_this_iter", 0) > 0]
    return (np.asarray([float(r["game_steps"]) for r in kept]),
            np.asarray([float(value(r)) for r in kept]))


def second_half_mean(steps: np.ndarray, values: np.ndarray) -> float:
    """The mean of the points logged after half of the run's last game steps."""
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    if not len(steps):
        raise ValueError("no logged points")
    return float(values[steps > steps[-1] / 2].mean())
