"""Social-welfare objectives (paper Eqs. 4-6 and Section 4) and social metrics (README, "The game").

Every function reduces over the **last axis = players** and keeps leading axes
(e.g. parallel games) separate: the egalitarian min is taken *within* each game,
never across games (paper Section 4: W's min_i is over one game's players).
Objectives expect per-player totals over the period being judged
(``sum_t a_{i,t}``), not single-step values.
The objectives and the Gini index are written once, in the ``*_core`` functions,
against an array namespace ``xp`` (numpy or jax.numpy), used by the validated
numpy API and by the JAX twin (``twin/sed.py``); ``WELFARE_CORES`` maps the
registered objective names to them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sed_meltingpot.core import registry
from sed_meltingpot.core.validators import unit_interval_array

__all__ = [
    "WELFARE_CORES",
    "WELFARE_FUNCTIONS",
    "gini_core",
    "interpolated_core",
    "nash_core",
    "WelfareFn",
    "egalitarian",
    "equality",
    "get_welfare",
    "gini",
    "interpolated",
    "nash_welfare",
    "peace",
    "productivity",
    "register_welfare",
    "sustainability",
    "utilitarian",
]

#: A welfare function: ``fn(apples_per_player (..., n), eta) -> value per game (...)``.
#: Functions that do not depend on eta ignore it.
WelfareFn = Callable[[np.ndarray, float], "np.ndarray | float"]


def _per_player(u: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(u, dtype=float)
    if arr.ndim == 0 or arr.shape[-1] == 0:
        raise ValueError(
            f"{name} must have a last axis of at least one player, got shape {arr.shape}"
        )
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} must not contain NaN")
    return arr


def _check_eta(eta: float) -> float:
    return float(unit_interval_array(eta, "eta"))


def interpolated_core(u: Any, eta: Any, xp: Any = np) -> Any:
    """W_eta = eta * sum_i u_i + (1 - eta) * min_i u_i, unvalidated, for namespace ``xp``."""
    return eta * xp.sum(u, axis=-1) + (1.0 - eta) * xp.min(u, axis=-1)


def nash_core(u: Any, xp: Any = np) -> Any:
    """(prod_i u_i)^(1/n) as exp(mean_i log u_i) for u >= 0 (0 if any u_i = 0), unvalidated."""
    return xp.exp(xp.mean(xp.log(u), axis=-1))


def gini_core(x: Any, xp: Any = np) -> Any:
    """Gini over the last axis for x >= 0 (0 for all-zero x), unvalidated; see ``gini``."""
    n = x.shape[-1]
    s = xp.sort(x, axis=-1)
    total = s.sum(axis=-1)
    # Sorted form of the pairwise sum: sum_ij |x_i - x_j| = 2 sum_k (2k - n - 1) x_(k), k=1..n.
    k = xp.arange(1, n + 1, dtype=x.dtype)
    pairwise = 2.0 * (s * (2.0 * k - n - 1.0)).sum(axis=-1)
    denom = 2.0 * n * total
    return xp.where(total > 0, pairwise / xp.where(total > 0, denom, 1.0), 0.0)


#: The registered objectives as ``core(u, eta, xp)``, for array code (the JAX twin).
WELFARE_CORES: dict[str, Callable[[Any, Any, Any], Any]] = {
    "interpolated": interpolated_core,
    "utilitarian": lambda u, eta, xp=np: xp.sum(u, axis=-1),
    "egalitarian": lambda u, eta, xp=np: xp.min(u, axis=-1),
    "nash": lambda u, eta, xp=np: nash_core(u, xp),
}


def utilitarian(u: ArrayLike) -> np.ndarray:
    """Utilitarian welfare sum_i u_i (paper Eq. 4)."""
    return np.asarray(_per_player(u, "u").sum(axis=-1))


def egalitarian(u: ArrayLike) -> np.ndarray:
    """Egalitarian welfare min_i u_i (paper Eq. 6)."""
    return np.asarray(_per_player(u, "u").min(axis=-1))


def nash_welfare(u: ArrayLike) -> np.ndarray:
    """Nash welfare (prod_i u_i)^(1/n) (paper Eq. 5), computed as exp(mean_i log u_i).

    Convention: utilities must be >= 0, else ValueError. Nash welfare is the
    geometric mean, which is only defined and monotone for non-negative
    utilities (a product of two negatives would rank a loss as a gain, and the
    n-th root of a negative product is undefined for even n); apples are never
    negative. Any zero utility gives welfare exactly 0, the limit of the formula.
    The log form avoids the overflow/underflow of the plain product for many players.
    """
    arr = _per_player(u, "u")
    if np.any(arr < 0):
        first = tuple(int(i) for i in np.argwhere(arr < 0)[0])
        raise ValueError(
            f"nash_welfare needs utilities >= 0, got u[{', '.join(map(str, first))}]="
            f"{float(arr[first])!r}"
        )
    with np.errstate(divide="ignore"):  # log(0) = -inf, so exp(mean) = 0: the zero convention.
        return np.asarray(nash_core(arr, np))


def interpolated(apples: ArrayLike, eta: float) -> np.ndarray:
    """W_eta = eta * sum_i a_i + (1 - eta) * min_i a_i (paper Section 4, objective space W).

    ``apples`` are per-player totals sum_t a_{i,t}; eta = 1 is utilitarian,
    eta = 0 egalitarian.
    """
    e = _check_eta(eta)
    arr = _per_player(apples, "apples")
    return np.asarray(interpolated_core(arr, e, np))


def _utilitarian_objective(apples: ArrayLike, eta: float | None = None) -> np.ndarray:
    """Registry form of :func:`utilitarian` (ignores eta)."""
    return utilitarian(apples)


def _egalitarian_objective(apples: ArrayLike, eta: float | None = None) -> np.ndarray:
    """Registry form of :func:`egalitarian` (ignores eta)."""
    return egalitarian(apples)


def _nash_objective(apples: ArrayLike, eta: float | None = None) -> np.ndarray:
    """Registry form of :func:`nash_welfare` (ignores eta)."""
    return nash_welfare(apples)


#: Registered objectives, all with the signature ``fn(apples_per_player, eta)``.
WELFARE_FUNCTIONS: dict[str, WelfareFn] = {
    "interpolated": interpolated,
    "utilitarian": _utilitarian_objective,
    "egalitarian": _egalitarian_objective,
    "nash": _nash_objective,
}


def register_welfare(name: str, fn: WelfareFn, *, overwrite: bool = False) -> None:
    """Add a custom welfare function ``fn(apples_per_player, eta)`` under ``name``.

    The paper lets the voting set include custom welfare functions (after Eq. 6).
    Re-using a name raises unless ``overwrite=True``, so a typo cannot silently
    replace a built-in objective.
    """
    registry.register(WELFARE_FUNCTIONS, "welfare function", name, fn, overwrite=overwrite)


def get_welfare(name: str) -> WelfareFn:
    """Look up a welfare function by name; unknown names list the registered ones."""
    return registry.lookup(WELFARE_FUNCTIONS, "welfare function", name)


#: The built-in objectives, whose array form (`WELFARE_CORES`) is the same definition.
_BUILTIN_WELFARE = dict(WELFARE_FUNCTIONS)


def welfare_core(name: str) -> Callable[[Any, Any, Any], Any] | None:
    """The array core ``core(u, eta, xp)`` of the objective registered as ``name``, or
    None when a custom function took the name (it runs on the host only). The game's
    shells call the core on values they built themselves, without re-validating them
    every step."""
    fn = get_welfare(name)
    return WELFARE_CORES[name] if _BUILTIN_WELFARE.get(name) is fn else None


# ---------------------------------------------------------------------------
# Social metrics beside the objective (Perolat et al. 2017, the Harvest game of paper Section 4).


def gini(x: ArrayLike) -> np.ndarray:
    """Gini coefficient over the last axis: sum_ij |x_i - x_j| / (2 n sum_i x_i).

    Values must be >= 0 (ValueError otherwise: the Gini index is not meaningful for
    negative incomes). All-zero incomes count as perfectly equal, Gini 0, instead of
    0/0. One holder of everything among n gives 1 - 1/n.
    """
    arr = _per_player(x, "x")
    if np.any(arr < 0):
        raise ValueError("gini needs incomes >= 0, got a negative entry")
    return np.asarray(gini_core(arr, np))


def equality(x: ArrayLike) -> np.ndarray:
    """Equality = 1 - Gini (Zheng et al. 2022); 1 for all-zero incomes."""
    return np.asarray(1.0 - gini(x))


def productivity(apples: ArrayLike, axis: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Total apples collected: the sum over ``axis`` (default every axis: one game's total)."""
    arr = np.asarray(apples, dtype=float)
    return np.asarray(arr.sum(axis=axis))


def sustainability(eat_counts: ArrayLike, *, start: int = 0) -> float:
    """Mean step index at which apples were eaten: sum_t t * c_t / sum_t c_t.

    ``eat_counts`` is ``(T,)`` apples eaten per step or ``(T, n)`` per step per
    player (players are pooled, so each apple counts once). Steps are numbered
    ``start, start + 1, ...`` (default 0, i.e. array index). A late mean step
    means apples were not all eaten at once, the sustainability measure of
    Perolat et al. 2017 (who average each player's mean time; pooling instead
    weights every apple equally).

    If no apple was eaten the mean is undefined and NaN is returned: 0 would
    claim every apple went at the first step (the *least* sustainable value), and
    T would invent a value; NaN is skipped by ``np.nanmean`` when averaging runs.
    """
    c = np.asarray(eat_counts, dtype=float)
    if c.ndim not in (1, 2):
        raise ValueError(f"eat_counts must have shape (T,) or (T, n), got shape {c.shape}")
    if np.any(np.isnan(c)) or np.any(c < 0):
        raise ValueError("eat_counts must be counts >= 0 (no NaN)")
    per_step = c if c.ndim == 1 else c.sum(axis=1)
    total = per_step.sum()
    if total == 0:
        return float("nan")
    t = np.arange(per_step.shape[0], dtype=float) + start
    return float((t * per_step).sum() / total)


def peace(zapped: ArrayLike) -> float:
    """Share of player-steps in which the player was not zapped: 1 - mean(zapped).

    ``zapped`` is a ``(T, n)`` (or any-shape) array of bool / 0-1, true where the
    player was hit by a zapper that step (after Perolat et al. 2017).
    """
    z = np.asarray(zapped)
    if z.size == 0:
        raise ValueError("zapped must not be empty")
    if z.dtype != bool and not np.all((z == 0) | (z == 1)):
        raise ValueError("zapped must hold booleans or 0/1 values only")
    return float(1.0 - z.astype(float).mean())
