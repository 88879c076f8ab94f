"""The principal's action: a marginal bracket tax with even redistribution.

Implements the tax T(a, phi) and the taxed reward r_tax of the Apple Picking
Game (paper Section 4, the formulas under Eq. 8).

The arithmetic is written once, in ``bracket_tax_core`` and ``transfers_core``,
against an array namespace ``xp`` (numpy or jax.numpy): the validated numpy API
below and the JAX twin (``sed_meltingpot.twin.sed``) both call them, so the two
cannot drift apart.

Conventions (all follow the paper's formula literally):

* Bracket ``b`` covers incomes in ``(tau_b, tau_{b+1}]``; with the default
  thresholds ``(0, 10, 20, 10000)`` these are the paper's brackets
  ``(1, 10), (11, 20), (21, 10000)`` in whole apples.
* Income at or below ``tau_0`` pays no tax (this includes negative income).
* Income *above the top threshold* ``tau_B`` is untaxed beyond it: the tax of an
  income ``a > tau_B`` equals the tax of ``tau_B``. The paper's formula has no
  bracket above ``tau_B``; with the default ``tau_B = 10000`` apples per 50-step
  period this never binds. Pass ``thresholds[-1] = inf`` for an open top bracket.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sed_meltingpot.core.validators import unit_interval_array

__all__ = [
    "DEFAULT_NUM_RATE_LEVELS",
    "DEFAULT_RATE_LEVELS",
    "DEFAULT_THRESHOLDS",
    "NO_TAX",
    "bracket_tax",
    "bracket_tax_core",
    "redistribute",
    "transfers_core",
    "validate_rates",
    "validate_thresholds",
]

# The tax schedule's defaults live here, not in `sed_meltingpot.game.config` (which
# imports them): the pure tax math sits below the game config, with no circle.

#: Bracket edges tau_0 < ... < tau_B in apples per tax period (paper Appendix A):
#: brackets (1, 10), (11, 20), (21, 10000).
DEFAULT_THRESHOLDS: tuple[int, ...] = (0, 10, 20, 10000)

#: Discrete rate levels per bracket for the principal's action: {0.0, 0.1, ..., 1.0}.
DEFAULT_NUM_RATE_LEVELS = 11

#: The default discrete action space of one bracket: 0.0, 0.1, ..., 1.0.
DEFAULT_RATE_LEVELS: tuple[float, ...] = tuple(
    float(x) for x in np.round(np.linspace(0.0, 1.0, DEFAULT_NUM_RATE_LEVELS), 1)
)

#: phi_0 of the paper: no tax in any bracket.
NO_TAX: tuple[float, ...] = (0.0, 0.0, 0.0)


#: Deprecated private name of `validators.unit_interval_array`, kept for one release.
_unit_interval_array = unit_interval_array


def validate_thresholds(
    thresholds: Sequence[float] | ArrayLike, name: str = "thresholds"
) -> np.ndarray:
    """Check bracket edges: 1-D, at least two, finite (top may be +inf), strictly increasing.

    Returns them as a float array. Strictly increasing edges are what make every
    bracket width ``tau_{b+1} - tau_b`` positive, so each apple lies in exactly
    one bracket.
    """
    raw = np.asarray(thresholds)
    if raw.ndim != 1 or raw.shape[0] < 2:
        raise ValueError(
            f"{name} must be a 1-D sequence of at least 2 bracket edges "
            f"(tau_0 < ... < tau_B), got shape {raw.shape}"
        )
    try:
        arr = raw.astype(float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numbers, got {tuple(raw.tolist())}") from err
    shown = tuple(raw.tolist())
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} must not contain NaN, got {shown}")
    if np.any(np.isinf(arr[:-1])) or arr[-1] == -np.inf:
        raise ValueError(f"{name} must be finite (only the top edge may be +inf), got {shown}")
    if np.any(np.diff(arr) <= 0):
        raise ValueError(f"{name} must be strictly increasing, got {shown}")
    return arr


def validate_rates(
    rates: Sequence[float] | ArrayLike, num_brackets: int | None = None, name: str = "rates"
) -> np.ndarray:
    """Check a tax action phi: 1-D, one rate per bracket, each in [0, 1] (paper: 0 <= phi_i <= 1).

    Returns it as a float array.
    """
    raw = np.asarray(rates)
    if raw.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D sequence with one rate per bracket, got shape {raw.shape}"
        )
    if raw.shape[0] == 0:
        raise ValueError(f"{name} must have at least one bracket, got an empty sequence")
    if num_brackets is not None and raw.shape[0] != num_brackets:
        raise ValueError(
            f"{name} has length {raw.shape[0]}, expected {num_brackets} (one per bracket)"
        )
    try:
        raw = raw.astype(float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numbers in [0, 1], got {tuple(raw.tolist())}") from err
    return unit_interval_array(raw, name)


def _validate_income(income: ArrayLike) -> np.ndarray:
    arr = np.asarray(income, dtype=float)
    if np.any(np.isnan(arr)):
        raise ValueError("income must not contain NaN")
    return arr


def bracket_tax_core(income: Any, rates: Any, lower: Any, width: Any, xp: Any = np) -> Any:
    """T(a, phi) without validation, for any array namespace ``xp`` (numpy, jax.numpy).

    ``lower`` = tau_0..tau_{B-1} and ``width`` = tau_{b+1} - tau_b (the top may be inf);
    ``income`` has any shape, the result the same shape. See ``bracket_tax``.
    """
    in_bracket = xp.clip(income[..., None] - lower, 0.0, width)  # shape (..., B)
    return in_bracket @ rates


def transfers_core(taxes: Any, xp: Any = np) -> Any:
    """Even redistribution: -T(a_i) + (1/n) sum_j T(a_j) over the last axis (sums to 0).

    The game (``SEDGame.step``) and the twin add this to the period's last-step
    reward, so each player's period income becomes ``redistribute``'s r_tax.
    """
    return xp.mean(taxes, axis=-1, keepdims=True) - taxes


def bracket_tax(
    income: ArrayLike,
    rates: Sequence[float] | ArrayLike,
    thresholds: Sequence[float] | ArrayLike = DEFAULT_THRESHOLDS,
) -> np.ndarray:
    """Marginal bracket tax T(a, phi), elementwise over ``income`` of any shape.

    T(a, phi) = sum_b phi_b * ((tau_{b+1} - tau_b) * 1[a > tau_{b+1}]
                               + (a - tau_b) * 1[tau_b < a <= tau_{b+1}])

    (paper Section 4, below Eq. 8). The two indicator terms together equal
    ``clip(a - tau_b, 0, tau_{b+1} - tau_b)``, the part of ``a`` that falls in
    bracket ``b``, which is how it is computed here (that form also allows an
    infinite top edge). Income above ``tau_B`` is not taxed beyond ``tau_B``.
    """
    tau = validate_thresholds(thresholds)
    phi = validate_rates(rates, num_brackets=tau.shape[0] - 1)
    a = _validate_income(income)
    return np.asarray(bracket_tax_core(a, phi, tau[:-1], np.diff(tau)))


def redistribute(
    income: ArrayLike,
    rates: Sequence[float] | ArrayLike,
    thresholds: Sequence[float] | ArrayLike = DEFAULT_THRESHOLDS,
) -> np.ndarray:
    """Taxed reward r_tax,i = (a_i - T(a_i, phi)) + (1/n) sum_j T(a_j, phi).

    The last axis of ``income`` indexes the n players (leading axes are a batch,
    e.g. parallel games; the pool is shared only within one game). All tax
    collected is handed back in equal shares, so the budget balances:
    ``sum_i r_tax,i == sum_i a_i`` up to float rounding.
    """
    a = _validate_income(income)
    if a.ndim == 0 or a.shape[-1] == 0:
        raise ValueError(
            f"income must have a last axis of at least one player, got shape {a.shape}"
        )
    tax = bracket_tax(a, rates, thresholds)
    # (a - T) + mean T, in this order: under full taxation a - T is exactly 0, so
    # every player gets bit-identical shares (tests/test_tax.py).
    return a - tax + tax.mean(axis=-1, keepdims=True)
