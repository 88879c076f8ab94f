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

`PrincipalSpec` is such a spelling, typed: `learned` (co-trained), `none`,
`fixed:r0,r1,..` or `random`, as TrainConfig.principal, run_config.json, the
scripts' flags and the experiment's grid write it. `PrincipalSpec.parse(text)`
checks it once (errors name the value and the allowed forms) and `str(spec)` is
its canonical spelling; `parse_principal`, training.jax.ppo_config.parse_scripted and
experiment.grid.principal_spec go through it. No JAX, Ray or torch here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sed_meltingpot.core import tax


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


LEARNED, NO_TAX, FIXED, RANDOM = "learned", "none", "fixed", "random"
#: Named fixed schedules, rates per bracket (brackets of GameConfig.thresholds: 1-10,
#: 11-20, 21+ apples per period): the experiment's baselines
#: (`experiment.grid.SCHEDULES`) and, with no tax, the two-timescale principals' default
#: arms (`design.two_timescale.NAMED_ARMS`). Flat taxes every apple at 30%; progressive
#: and regressive raise or lower the rate by 20 points per bracket around the same
#: middle rate; flat100 taxes every apple (full redistribution: everyone gets the mean).
NAMED_SCHEDULES: dict[str, tuple[float, ...]] = {
    "flat": (0.3, 0.3, 0.3),
    "progressive": (0.1, 0.3, 0.5),
    "regressive": (0.5, 0.3, 0.1),
    "flat100": (1.0, 1.0, 1.0),
}
# Offsets a scripted random principal's stream from the players' (both seeded per
# episode: evaluation.episodes on Lua, training.jax.play on the twin).
PRINCIPAL_SEED_OFFSET = 7919
#: A principal spec's kinds: co-trained, no tax, a fixed schedule, uniform random levels.
PRINCIPAL_KINDS = (LEARNED, NO_TAX, FIXED, RANDOM)
FIXED_PREFIX = FIXED + ":"


def _rate_text(rate: float) -> str:
    """The shortest text that reads back as `rate`, without a trailing '.0' (1 -> '1')."""
    text = repr(float(rate))
    return text[:-2] if text.endswith(".0") else text


def _forms(num_brackets: int | None, scripted: bool) -> str:
    last = "r0,r1,..." if num_brackets is None else f"r0,...,r{num_brackets - 1}"
    kinds = "'none', 'random'" if scripted else "'learned', 'none', 'random'"
    return f"{kinds} or 'fixed:{last}'"


@dataclasses.dataclass(frozen=True)
class PrincipalSpec:
    """A principal as it is spelled (module docstring): `kind` one of PRINCIPAL_KINDS,
    `rates` the schedule of a `fixed` one (floats in [0, 1], one per bracket), None
    for the others. `parse` reads a spelling, `str` gives the canonical one."""

    kind: str
    rates: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in PRINCIPAL_KINDS:
            raise ValueError(f"principal kind {self.kind!r} must be one of "
                             f"{list(PRINCIPAL_KINDS)}")
        if self.kind != FIXED:
            if self.rates is not None:
                raise ValueError(f"principal {self.kind!r} takes no rates, got {self.rates!r}")
            return
        if self.rates is None:
            raise ValueError("a fixed principal needs its rates, e.g. fixed:0.1,0.2,0.3")
        rates = tax.validate_rates(self.rates, name="fixed principal rates")
        # + 0.0: -0.0 reads as 0.0, so that equal schedules are equal specs.
        object.__setattr__(self, "rates", tuple(float(r) + 0.0 for r in rates))

    @classmethod
    def parse(cls, text: str, *, num_brackets: int | None = None,
              scripted: bool = False) -> PrincipalSpec:
        """`learned` | `none` | `random` | `fixed:r0,r1,..`; `num_brackets` checks a
        fixed schedule's length, `scripted` refuses `learned` (a principal that
        plays without training). ValueError names the value and the allowed forms."""
        forms = _forms(num_brackets, scripted)
        if not isinstance(text, str):
            raise ValueError(f"principal {text!r} must be a string: {forms}")
        if text in (NO_TAX, RANDOM) or (text == LEARNED and not scripted):
            return cls(text)
        if not text.startswith(FIXED_PREFIX):
            raise ValueError(f"principal {text!r} must be {forms}")
        try:
            rates = parse_rates(text[len(FIXED_PREFIX):])
        except ValueError as e:
            raise ValueError(f"principal {text!r}: rates must be numbers, e.g. "
                             "fixed:0.1,0.2,0.3") from e
        try:
            if num_brackets is not None:  # the length first, as tax.validate_rates checks
                tax.validate_rates(rates, num_brackets, "fixed principal rates")
            return cls(FIXED, tuple(rates))
        except ValueError as e:
            raise ValueError(f"principal {text!r}: {e}") from e

    def __str__(self) -> str:
        if self.kind == FIXED:
            return FIXED_PREFIX + ",".join(_rate_text(r) for r in self.rates or ())
        return self.kind

    @property
    def learned(self) -> bool:
        return self.kind == LEARNED

    def rates_for(self, num_brackets: int) -> np.ndarray | None:
        """The fixed rates of the spec (zeros for `none`), checked to be one per bracket;
        None for `learned` and `random`."""
        if self.kind == NO_TAX:
            return np.zeros(num_brackets)
        if self.kind != FIXED:
            return None
        return tax.validate_rates(self.rates, num_brackets, "fixed principal rates")

    def build(self, *, num_brackets: int, rate_levels: Sequence[float],
              seed: int | None = None) -> Principal:
        """The principal that plays the spec (not for `learned`: a trained module)."""
        if self.kind == RANDOM:
            return RandomPrincipal(rate_levels, num_brackets, seed)
        rates = self.rates_for(num_brackets)
        if rates is None:
            raise ValueError(f"principal {str(self)!r} is not scripted: it plays as a "
                             "trained module (evaluation.ModulePrincipal)")
        return FixedRates(rates)


def parse_principal(spec: str, *, num_brackets: int, rate_levels: Sequence[float],
                    seed: int | None = None) -> Principal:
    """`none` | `fixed:r0,r1,r2` | `random` -> a principal callable."""
    return PrincipalSpec.parse(spec, num_brackets=num_brackets, scripted=True).build(
        num_brackets=num_brackets, rate_levels=rate_levels, seed=seed)
