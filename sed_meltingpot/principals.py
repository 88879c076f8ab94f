"""Principals as the environments play them: baselines, and the protocol a
trained one follows too.

Every principal, scripted or learned, is a `Principal`: called with the
game's principal observation (`SEDGame.principal_observation()`) at the start
of each tax period, it returns one rate in [0, 1] per bracket; `reset(seed)`
restarts its random stream, so that an episode's rates depend on its seed
alone. The envs (`rllib_env`'s scripted principals, `pettingzoo_env`) and
evaluation play every kind through this one protocol; a trained principal
follows it through `evaluation.ModulePrincipal`. `str(principal)` is its
command-line spelling, which `parse_principal` reads back (`none`,
`fixed:r0,r1,r2`, `random`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sed_meltingpot import tax


@runtime_checkable
class Principal(Protocol):
    """Rates for the period now starting, from the principal's observation."""

    def __call__(self, observation: dict[str, Any]) -> np.ndarray: ...

    def reset(self, seed: int) -> None:
        """Restarts the principal's randomness (a no-op for deterministic ones)."""


def check_principal(value: Any) -> Principal:
    """`value` if it follows the protocol; else a TypeError that says how to make one
    (a spec string such as 'none' is parsed by `parse_principal`, not taken as is)."""
    if not isinstance(value, Principal):
        raise TypeError(
            f"principal {value!r} is not a principals.Principal (a callable with reset(seed)); "
            "build one with principals.parse_principal('none' | 'fixed:r0,..' | 'random', "
            "...), evaluation.make_principal(spec, setup) or evaluation.ModulePrincipal")
    return value


class FixedRates:
    """The same rates every period (no tax is FixedRates of zeros)."""

    def __init__(self, rates: Sequence[float]) -> None:
        self.rates = tax.validate_rates(rates)

    def __call__(self, observation: dict[str, Any]) -> np.ndarray:
        return self.rates.copy()

    def reset(self, seed: int) -> None:
        del seed  # deterministic

    def __repr__(self) -> str:
        return f"FixedRates({self.rates.tolist()})"

    def __str__(self) -> str:
        if not self.rates.any():
            return "none"
        return "fixed:" + ",".join(str(float(r)) for r in self.rates)


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

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def __str__(self) -> str:
        return "random"


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
