"""Validators shared by the pure-math modules (tax, rewards, voting, welfare) and the
argparse scripts' number types (`finite_float`, `int_at_least`).

The bottom layer of the package: it imports nothing from `sed_meltingpot`, so
every module may use it without an import circle (and a script that must not import
absl, such as scripts/gpu_check.py, may too), and every "must lie in [0, 1]" or "must
be a finite number" error reads the same way.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["FINITE", "finite_float", "int_at_least", "unit_interval_array"]

#: What a flag whose value is NaN or infinite is told (cli.require_finite_floats too).
FINITE = "must be a finite number"


def finite_float(text: str) -> float:
    """argparse `type=` for a float flag: NaN and +-inf are refused with one line
    ("argument --seconds: nan: must be a finite number"), since `float()` takes them
    and a range check written as `not low <= x <= high` is the only thing that stops
    them (NaN compares false both ways: a bound alone lets it through)."""
    value = float(text)  # ValueError: argparse's "invalid finite_float value: 'x'"
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text}: {FINITE}")
    return value


def int_at_least(minimum: int) -> Callable[[str], int]:
    """argparse `type=` for an integer flag >= `minimum` (a size of 0 would divide by
    zero or measure nothing)."""

    def parse(text: str) -> int:
        value = int(text)  # ValueError: argparse's "invalid int_at_least value"
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum {minimum}")
        return value

    parse.__name__ = "int_at_least"
    return parse


def unit_interval_array(values: ArrayLike, name: str) -> np.ndarray:
    """Return ``values`` as a float array, raising if any entry is NaN or outside [0, 1].

    The message names the first bad entry, e.g. ``rates[1]=1.5 is outside [0, 1]``.
    """
    arr = np.asarray(values, dtype=float)
    bad = ~((arr >= 0.0) & (arr <= 1.0))  # NaN fails both comparisons.
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        label = name if arr.ndim == 0 else f"{name}[{', '.join(map(str, index))}]"
        value = arr[index] if arr.ndim else arr.item()
        raise ValueError(f"{label}={float(value)!r} is outside [0, 1]")
    return arr
