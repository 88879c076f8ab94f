"""The principal's divergence constraint D(phi_0, phi) <= delta (paper Definition 3.1, Eq. 7).

The paper leaves the principal unconstrained in its experiment (delta = inf)
and notes the constraint can be reparameterised away; here it is supported as a
Euclidean projection of a proposed action onto the feasible set

    {phi : D(phi_0, phi) <= delta} intersected with [0, 1]^B,

so any unconstrained proposal (e.g. a policy sample or a gradient step) can be
turned into the closest feasible tax. Pure numpy.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from sed_meltingpot.core.tax import validate_rates

__all__ = ["NORMS", "divergence", "project_linf_core", "project_rates"]

Norm = Literal["linf", "l1"]
NORMS: tuple[str, ...] = ("linf", "l1")


def _check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return norm


def _check_delta(delta: float) -> float:
    d = float(delta)
    if not d >= 0.0:  # also rejects NaN
        raise ValueError(f"delta={d!r} is outside [0, inf]")
    return d


def divergence(reference: ArrayLike, rates: ArrayLike, norm: Norm = "linf") -> float:
    """D(phi_0, phi): the L-infinity (largest per-bracket change) or L1 distance."""
    _check_norm(norm)
    ref = validate_rates(reference, name="reference")
    phi = validate_rates(rates, num_brackets=ref.shape[0])
    diff = np.abs(phi - ref)
    return float(diff.max() if norm == "linf" else diff.sum())


def project_linf_core(proposed: Any, reference: Any, delta: Any, xp: Any = np) -> Any:
    """Projection onto {|phi - ref|_inf <= delta} intersected with [0, 1]^B, unvalidated.

    The feasible set is a box, so the Euclidean projection clips each coordinate; a
    feasible proposal comes back unchanged. Written for any namespace ``xp`` (numpy or
    jax.numpy); ``project_rates`` and the JAX twin both use it.
    """
    return xp.clip(proposed, xp.maximum(reference - delta, 0.0),
                   xp.minimum(reference + delta, 1.0))


def _project_l1_box(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, delta: float) -> np.ndarray:
    """argmin_y ||y - v||^2 s.t. ||y||_1 <= delta, lo <= y <= hi, for lo <= 0 <= hi.

    KKT: y_i(lam) = clip(soft_threshold(v_i, lam), lo_i, hi_i) for a multiplier
    lam >= 0 (each 1-D problem is convex, so clipping its unconstrained minimiser
    soft_threshold(v_i, lam) onto the interval is exact). lam = 0 if that is already
    feasible; otherwise lam solves ||y(lam)||_1 = delta. ||y(lam)||_1 is piecewise
    linear and non-increasing in lam with breakpoints at |v_i| and |v_i| - cap_i,
    so lam is found exactly by evaluating it at the sorted breakpoints and
    interpolating linearly within the bracketing segment.
    """
    mag = np.abs(v)
    cap = np.where(v >= 0, hi, -lo)  # how far y_i may move in v_i's direction

    def size(lam: np.ndarray) -> np.ndarray:  # lam (K,) -> ||y(lam)||_1 (K,)
        return np.minimum(np.maximum(mag - lam[:, None], 0.0), cap).sum(axis=1)

    y0 = np.sign(v) * np.minimum(mag, cap)
    if np.abs(y0).sum() <= delta:
        return y0
    knots = np.unique(np.concatenate([[0.0], mag, np.maximum(mag - cap, 0.0)]))
    sizes = size(knots)  # non-increasing, sizes[0] > delta, sizes[-1] = 0
    k = int(np.searchsorted(-sizes, -delta, side="left"))  # first knot with size <= delta
    lam_lo, lam_hi = knots[k - 1], knots[k]
    s_lo, s_hi = sizes[k - 1], sizes[k]
    lam = lam_lo + (s_lo - delta) * (lam_hi - lam_lo) / (s_lo - s_hi)
    return np.sign(v) * np.minimum(np.maximum(mag - lam, 0.0), cap)


def project_rates(
    proposed: ArrayLike, reference: ArrayLike, delta: float, norm: Norm = "linf"
) -> np.ndarray:
    """Closest (Euclidean) phi to ``proposed`` with D(reference, phi) <= delta and phi in [0, 1]^B.

    ``proposed`` may lie outside [0, 1] (it is projected into the box too);
    ``reference`` (phi_0, the paper initialises it to no tax) must be a valid rate
    vector, so the feasible set is never empty. ``delta = inf`` only clips to the box.

    * ``"linf"``: the set is a box, so the projection clips each coordinate to
      [ref_b - delta, ref_b + delta] intersected with [0, 1].
    * ``"l1"``: exact projection onto the L1 ball around ``reference`` intersected
      with the box (see ``_project_l1_box``).

    A proposal already inside the feasible set is returned unchanged.
    """
    _check_norm(norm)
    d = _check_delta(delta)
    ref = validate_rates(reference, name="reference")
    p = np.asarray(proposed, dtype=float)
    if p.shape != ref.shape:
        raise ValueError(
            f"proposed has shape {p.shape}, expected {ref.shape} (one rate per bracket)"
        )
    if np.any(np.isnan(p)):
        raise ValueError("proposed must not contain NaN")
    in_box = bool(np.all((p >= 0.0) & (p <= 1.0)))
    if in_box and divergence(ref, p, norm) <= d:
        return p.copy()  # already feasible: return it bit-for-bit, not ref + (p - ref)
    if norm == "linf" or np.isinf(d):
        return project_linf_core(p, ref, d, np)
    y = _project_l1_box(p - ref, -ref, 1.0 - ref, d)
    return np.clip(ref + y, 0.0, 1.0)
