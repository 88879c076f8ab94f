"""Scripted principals: baselines and stand-ins for a trained one.

A principal is any callable `principal(observation) -> rates` taking the
game's principal observation (`SEDGame.principal_observation()`) and
returning one rate in [0, 1] per bracket. `parse_principal` turns the
command-line spelling (`none`, `fixed:r0,r1,r2`, `random`) into one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sed_meltingpot import tax

Principal = Callable[[dict[str, Any]], np.ndarray]


class FixedRates:
    """The same rates every period (`NoTax` is FixedRates of zeros)."""

    def __init__(self, rates: Sequence[float]) -> None:
        self.rates = tax.validate_rates(rates)

    def __call__(self, observation: dict[str, Any]) -> np.ndarray:
        return self.rates.copy()

    def __repr__(self) -> str:
        return f"FixedRates({self.rates.tolist()})"


def no_tax(num_brackets: int = 3) -> FixedRates:
    return FixedRates(np.zeros(num_brackets))


class RandomPrincipal:
    """Rates drawn uniformly from the discrete levels, per bracket and period."""

    def __init__(self, rate_levels: Sequence[float], num_brackets: int = 3,
                 seed: int | None = None) -> None:
        self.rate_levels = np.asarray(rate_levels, dtype=float)
        self.num_brackets = num_brackets
        self._rng = np.random.default_rng(seed)

    def __call__(self, observation: dict[str, Any]) -> np.ndarray:
        return self._rng.choice(self.rate_levels, size=self.num_brackets)


def parse_rates(text: str) -> list[float]:
    """'0.1,0.2,0.3' -> [0.1, 0.2, 0.3] (ranges are checked by tax.validate_rates)."""
    try:
        return [float(x) for x in text.split(",")]
    except ValueError as e:
        raise ValueError(f"schedule {text!r} must be comma-separated numbers, e.g. 0.1,0.2,0.3"
                         ) from e


def parse_principal(spec: str, *, num_brackets: int, rate_levels: Sequence[float],
                    seed: int | None = None) -> Principal:
    """`none` | `fixed:r0,r1,r2` | `random` -> a principal callable."""
    if spec == "none":
        return no_tax(num_brackets)
    if spec == "random":
        return RandomPrincipal(rate_levels, num_brackets, seed)
    if spec.startswith("fixed:"):
        try:
            rates = parse_rates(spec[len("fixed:"):])
        except ValueError as e:
            raise ValueError(f"principal {spec!r}: rates must be numbers, e.g. fixed:0.1,0.2,0.3"
                             ) from e
        return FixedRates(tax.validate_rates(rates, num_brackets, "fixed principal rates"))
    raise ValueError(
        f"principal {spec!r} must be 'none', 'random' or 'fixed:r0,...,r{num_brackets - 1}'")
