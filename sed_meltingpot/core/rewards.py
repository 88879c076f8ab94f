"""Player types and the type-weighted reward of paper Eq. 8 (Section 4).

r_i = sigma_i * r_tax,i + (1 - sigma_i) * sum_{j in N_i} r_tax,j

where sigma_i in [0, 1] is player i's selfishness and N_i the *other* players
observable to i. The game applies this per step, with that step's taxed reward
and that step's visibility (README, "The game"). The arithmetic is written once, in
``mix_rewards_core``, against an array namespace ``xp`` (numpy or jax.numpy), used
by the validated numpy ``mix_rewards`` and by the JAX twin (``twin/sed.py``).

Who sees whom comes in one of two forms: a boolean matrix ``visible[i, j]`` (the
Lua substrate's NEARBY, the direct form), or ``SeenLists``, for each player the
indices of the players it sees. A player sees only the cells of its view window,
so the lists have a fixed length whatever the number of players, and the sum is
O(n) instead of the matrix's O(n^2) (the twin's large games, ``twin/cell_grid.py``).
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from sed_meltingpot.core.validators import unit_interval_array

__all__ = ["SeenLists", "mix_rewards", "mix_rewards_core", "sample_selfishness",
           "validate_selfishness"]

NeighbourAggregate = Literal["sum", "mean"]
_AGGREGATES = ("sum", "mean")


def validate_selfishness(
    sigma: ArrayLike, num_players: int | None = None, name: str = "selfishness"
) -> np.ndarray:
    """Check player types: a 1-D array of selfishness values, each in [0, 1].

    Returns it as a float array. ``num_players``, when given, is the required length.
    """
    arr = np.asarray(sigma)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array with one value per player, got shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must have at least one player, got an empty array")
    if num_players is not None and arr.shape[0] != num_players:
        raise ValueError(
            f"{name} has length {arr.shape[0]}, expected {num_players} (one per player)"
        )
    return unit_interval_array(arr, name)


def sample_selfishness(num_players: int, seed: int | None) -> np.ndarray:
    """Draw sigma_i ~ Uniform[0, 1] for each player from ``np.random.default_rng(seed)``.

    The paper samples types once per run and keeps them fixed during training, so a
    run's seed fully determines them.
    """
    if isinstance(num_players, bool) or not isinstance(num_players, (int, np.integer)):
        raise TypeError(f"num_players must be a positive integer, got {num_players!r}")
    if num_players < 1:
        raise ValueError(f"num_players must be a positive integer (>= 1), got {num_players}")
    return np.random.default_rng(seed).uniform(0.0, 1.0, size=int(num_players))


def _validate_visible(visible: ArrayLike, num_players: int) -> np.ndarray:
    arr = np.asarray(visible)
    if arr.ndim < 2 or arr.shape[-2:] != (num_players, num_players):
        raise ValueError(
            f"visible must have shape (..., {num_players}, {num_players}) "
            f"(visible[i, j]: player j is observable to player i), got shape {arr.shape}"
        )
    if arr.dtype != bool:
        if not np.all((arr == 0) | (arr == 1)):
            raise ValueError("visible must hold booleans or 0/1 values only")
        arr = arr.astype(bool)
    return arr


class SeenLists(NamedTuple):
    """Who each player sees, as lists: ``index`` int ``(n, K)``, row i the players that
    player i sees, each at most once and in any order, padded with n (no one). An
    index equal to i is ignored, as the matrix's diagonal is. A NamedTuple, so it
    passes through ``jax.jit``, ``vmap`` and ``scan`` as an array would."""

    index: Any


def mix_rewards_core(
    r_tax: Any, sigma: Any, visible: Any, neighbour_aggregate: str = "sum", xp: Any = np
) -> Any:
    """Eq. 8 without validation, for any array namespace ``xp`` (numpy, jax.numpy).

    ``visible`` is boolean ``(..., n, n)``; its diagonal is masked here (a player is
    never its own neighbour). ``"mean"`` divides by the number of visible others
    (0 when none). See ``mix_rewards`` for the shapes. ``visible`` may instead be
    ``SeenLists`` of one game (``r_tax`` and ``sigma`` of shape ``(n,)``): the same
    rewards, summed over each list (in another order, so equal up to float rounding).
    """
    if isinstance(visible, SeenLists):
        return _mix_listed(r_tax, sigma, visible.index, neighbour_aggregate, xp)
    n = r_tax.shape[-1]
    weights = (visible & ~xp.eye(n, dtype=bool)).astype(r_tax.dtype)
    if neighbour_aggregate == "mean":
        counts = weights.sum(axis=-1, keepdims=True)
        weights = xp.where(counts > 0, weights / xp.maximum(counts, 1.0), 0.0)
    neighbours = xp.einsum("...ij,...j->...i", weights, r_tax)
    return sigma * r_tax + (1.0 - sigma) * neighbours


def _mix_listed(r_tax: Any, sigma: Any, index: Any, neighbour_aggregate: str, xp: Any
                ) -> Any:
    """Eq. 8 with the neighbours as lists (``SeenLists.index``, int ``(n, K)``)."""
    n = r_tax.shape[-1]
    valid = (index < n) & (index != xp.arange(n)[:, None])
    padded = xp.concatenate([r_tax, xp.zeros((1,), r_tax.dtype)])
    neighbours = xp.where(valid, padded[xp.where(valid, index, n)], 0.0).sum(axis=-1)
    if neighbour_aggregate == "mean":
        counts = valid.sum(axis=-1).astype(r_tax.dtype)
        neighbours = xp.where(counts > 0, neighbours / xp.maximum(counts, 1.0), 0.0)
    return sigma * r_tax + (1.0 - sigma) * neighbours.astype(r_tax.dtype)


def mix_rewards(
    taxed: ArrayLike,
    selfishness: ArrayLike,
    visible: ArrayLike,
    neighbour_aggregate: NeighbourAggregate = "sum",
) -> np.ndarray:
    """Type-weighted reward of paper Eq. 8.

    Args:
      taxed: r_tax, shape ``(..., n)``; the last axis indexes players.
      selfishness: sigma, shape ``(n,)``, each in [0, 1].
      visible: shape ``(..., n, n)`` of bool or 0/1; ``visible[..., i, j]`` is true
        when player j is observable to player i. The diagonal is ignored (a player
        is never its own neighbour), so it may hold anything 0/1.
      neighbour_aggregate: ``"sum"`` is Eq. 8 as written. ``"mean"`` averages the
        neighbours' rewards instead (0 when nobody is visible), a common variant
        that keeps the social term's scale independent of how many are in view.

    Returns:
      r, shape ``broadcast(taxed.shape, visible.shape[:-1])``.
    """
    if neighbour_aggregate not in _AGGREGATES:
        raise ValueError(
            f"neighbour_aggregate must be one of {_AGGREGATES}, got {neighbour_aggregate!r}"
        )
    r_tax = np.asarray(taxed, dtype=float)
    if r_tax.ndim == 0:
        raise ValueError("taxed must have a last axis of players, got a scalar")
    if not np.all(np.isfinite(r_tax)):
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(r_tax))[0])
        raise ValueError(f"taxed{list(index)}={r_tax[index]!r} is not finite: rewards must be "
                         "real numbers")
    n = r_tax.shape[-1]
    sigma = validate_selfishness(selfishness, num_players=n)
    vis = _validate_visible(visible, n)
    return mix_rewards_core(r_tax, sigma, vis, neighbour_aggregate, xp=np)
