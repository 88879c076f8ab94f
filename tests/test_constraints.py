"""Tests for sed_meltingpot.core.constraints: D(phi_0, phi) <= delta (paper Eq. 7) as a
projection."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sed_meltingpot.core.constraints import divergence, project_rates

SETTINGS = settings(max_examples=200, deadline=None)

unit3 = st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3)
proposals3 = st.lists(st.floats(-0.5, 1.5), min_size=3, max_size=3)
deltas = st.floats(0.0, 3.0)
norms = st.sampled_from(["linf", "l1"])

STEP = 0.02
GRID_1D = np.round(np.arange(0.0, 1.0 + STEP / 2, STEP), 10)
GRID_3D = np.array(list(itertools.product(GRID_1D, repeat=3)))  # 51^3 points in [0, 1]^3


def grid_projection(proposed, reference, delta, norm):
    """Brute force: the feasible grid point nearest to ``proposed`` and its squared distance."""
    diff = np.abs(GRID_3D - np.asarray(reference))
    dist = diff.max(axis=1) if norm == "linf" else diff.sum(axis=1)
    feasible = GRID_3D[dist <= delta + 1e-9]
    sq = ((feasible - np.asarray(proposed)) ** 2).sum(axis=1)
    k = int(np.argmin(sq))
    return feasible[k], float(sq[k])


def in_feasible_set(x, reference, delta, norm, tol=1e-9):
    x, ref = np.asarray(x), np.asarray(reference)
    in_box = np.all(x >= -tol) and np.all(x <= 1 + tol)
    d = np.abs(x - ref).max() if norm == "linf" else np.abs(x - ref).sum()
    return bool(in_box and d <= delta + tol)


# --- divergence ------------------------------------------------------------------------


def test_divergence_hand_example():
    assert math.isclose(divergence([0.0, 0.5, 1.0], [0.2, 0.2, 0.9], "linf"), 0.3)
    assert math.isclose(divergence([0.0, 0.5, 1.0], [0.2, 0.2, 0.9], "l1"), 0.6)


# --- hand examples ---------------------------------------------------------------------


def test_linf_hand_example():
    # ref 0.2 +/- 0.3 -> [0, 0.5] after the box: 0.9 -> 0.5, -0.4 -> 0.0, 0.3 stays.
    got = project_rates([0.9, -0.4, 0.3], [0.2, 0.2, 0.2], 0.3, "linf")
    np.testing.assert_allclose(got, [0.5, 0.0, 0.3], atol=1e-12)


def test_l1_hand_example():
    # v = p - ref = (0.7, -0.2, 0.3), ||v||_1 = 1.2 > 0.5. Soft-threshold by lam:
    # lam = 0.25 zeroes the -0.2 entry and leaves (0.45, 0, 0.05), whose L1 norm is 0.5.
    # (The coordinate cap toward 0 is 0.2 for the middle one, so it is inactive.)
    got = project_rates([0.9, 0.0, 0.5], [0.2, 0.2, 0.2], 0.5, "l1")
    np.testing.assert_allclose(got, [0.65, 0.2, 0.25], atol=1e-12)


def test_l1_box_binds():
    # ref (0.9, 0.5), p (3.0, 1.4), delta 0.4. The first coordinate gains most per unit of
    # budget (distance 2.1 vs 0.9), but the box caps it at 1.0 (0.1 of movement); the remaining
    # 0.3 goes to the second: x = (1.0, 0.8). Soft-thresholding alone would give (1.3, 0.5).
    got = project_rates([3.0, 1.4], [0.9, 0.5], 0.4, "l1")
    np.testing.assert_allclose(got, [1.0, 0.8], atol=1e-12)


def test_inside_is_returned_unchanged():
    proposed = np.array([0.3, 0.1, 0.7])
    for norm in ("linf", "l1"):
        got = project_rates(proposed, [0.1, 0.2, 0.6], 0.5, norm)
        np.testing.assert_array_equal(got, proposed)
        assert got is not proposed


def test_delta_zero_and_infinite():
    ref = [0.1, 0.5, 0.9]
    for norm in ("linf", "l1"):
        np.testing.assert_allclose(project_rates([1.0, 0.0, 0.3], ref, 0.0, norm), ref, atol=1e-12)
        np.testing.assert_array_equal(
            project_rates([1.4, -0.2, 0.3], ref, math.inf, norm), [1.0, 0.0, 0.3]
        )


# --- properties ------------------------------------------------------------------------


@SETTINGS
@given(proposals3, unit3, deltas, norms)
def test_output_is_feasible(proposed, reference, delta, norm):
    got = project_rates(proposed, reference, delta, norm)
    assert in_feasible_set(got, reference, delta, norm)


@SETTINGS
@given(proposals3, unit3, deltas, norms)
def test_projection_variational_inequality(proposed, reference, delta, norm):
    """x* is the projection onto a convex C iff <p - x*, z - x*> <= 0 for every z in C."""
    x = project_rates(proposed, reference, delta, norm)
    rng = np.random.default_rng(0)
    ref = np.asarray(reference)
    z = rng.uniform(0.0, 1.0, size=(2000, 3))
    d = np.abs(z - ref).max(axis=1) if norm == "linf" else np.abs(z - ref).sum(axis=1)
    scale = np.minimum(1.0, delta / np.maximum(d, 1e-300))[:, None]
    z = ref + scale * (z - ref)  # shrink toward ref: stays in the box, now within delta
    z = np.concatenate([z, ref[None]])
    inner = (z - x) @ (np.asarray(proposed) - x)
    assert np.all(inner <= 1e-9)


@settings(max_examples=40, deadline=None)
@given(
    proposals3,
    st.lists(st.integers(0, 50), min_size=3, max_size=3),
    st.floats(0.0, 1.5),
    norms,
)
def test_matches_grid_search(proposed, ref_steps, delta, norm):
    reference = np.array(ref_steps) * STEP  # on the grid, so the grid's feasible set is not empty
    x = project_rates(proposed, reference, delta, norm)
    grid_x, grid_sq = grid_projection(proposed, reference, delta, norm)
    sq = float(((x - np.asarray(proposed)) ** 2).sum())
    assert sq <= grid_sq + 1e-9  # no feasible grid point is closer
    # Projection onto a convex set: ||z - x*||^2 <= ||z - p||^2 - ||x* - p||^2 for z in C,
    # so the grid's best point pins x* down to within sqrt(grid_sq - sq).
    assert float(((grid_x - x) ** 2).sum()) <= grid_sq - sq + 1e-9


@SETTINGS
@given(proposals3, unit3, deltas, norms)
def test_idempotent(proposed, reference, delta, norm):
    once = project_rates(proposed, reference, delta, norm)
    np.testing.assert_allclose(project_rates(once, reference, delta, norm), once, atol=1e-12)


def test_l1_differs_from_coordinate_clipping():
    # Clipping each coordinate to ref +/- delta gives (0.7, 0.0, 0.7), L1 distance 1.0 > 0.5.
    got = project_rates([0.9, 0.0, 0.5], [0.2, 0.2, 0.2], 0.5, "l1")
    assert divergence([0.2, 0.2, 0.2], got, "l1") <= 0.5 + 1e-12
    assert not np.allclose(got, [0.7, 0.0, 0.7])


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([0.5, 0.5], [0.2, 0.2], -0.1, "l1"), r"delta=-0\.1 is outside \[0, inf\]"),
        (([0.5, 0.5], [0.2, 0.2], float("nan"), "l1"), r"delta=nan is outside \[0, inf\]"),
        (([0.5, 0.5], [0.2, 0.2], 0.1, "l2"), r"norm must be one of \('linf', 'l1'\), got 'l2'"),
        (([0.5, 0.5], [1.2, 0.2], 0.1, "linf"), r"reference\[0\]=1\.2 is outside \[0, 1\]"),
        (([0.5, 0.5, 0.5], [0.2, 0.2], 0.1, "linf"), r"proposed has shape \(3,\), expected \(2,\)"),
        (([0.5, float("nan")], [0.2, 0.2], 0.1, "linf"), r"proposed must not contain NaN"),
    ],
)
def test_project_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        project_rates(*args)


def test_divergence_rejects_bad_input():
    with pytest.raises(ValueError, match=r"rates has length 2, expected 3 \(one per bracket\)"):
        divergence([0.1, 0.2, 0.3], [0.1, 0.2], "l1")
    with pytest.raises(ValueError, match=r"rates\[0\]=-1\.0 is outside \[0, 1\]"):
        divergence([0.1], [-1.0], "l1")
    with pytest.raises(ValueError, match="norm must be one of"):
        divergence([0.1], [0.2], "kl")
