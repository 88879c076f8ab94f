"""Tests for sed_meltingpot.core.welfare: objectives (paper Eqs. 4-6, Section 4) and metrics."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sed_meltingpot.core.welfare import (
    WELFARE_FUNCTIONS,
    egalitarian,
    equality,
    get_welfare,
    gini,
    interpolated,
    nash_welfare,
    peace,
    productivity,
    register_welfare,
    sustainability,
    utilitarian,
)

SETTINGS = settings(max_examples=200, deadline=None)


@pytest.fixture
def clean_registry():
    """Restore the welfare registry after a test that registers functions."""
    saved = dict(WELFARE_FUNCTIONS)
    yield
    WELFARE_FUNCTIONS.clear()
    WELFARE_FUNCTIONS.update(saved)


# --- objectives ------------------------------------------------------------------------


def test_hand_examples():
    u = [3.0, 5.0, 10.0]
    assert float(utilitarian(u)) == 18.0
    assert float(egalitarian(u)) == 3.0
    # eta = 0.25: 0.25*18 + 0.75*3 = 4.5 + 2.25 = 6.75
    assert math.isclose(float(interpolated(u, 0.25)), 6.75, abs_tol=1e-12)
    # (1 * 4 * 16)^(1/3) = 64^(1/3) = 4 ; (2 * 8)^(1/2) = 4
    assert math.isclose(float(nash_welfare([1.0, 4.0, 16.0])), 4.0, rel_tol=1e-12)
    assert math.isclose(float(nash_welfare([2.0, 8.0])), 4.0, rel_tol=1e-12)


def test_min_is_within_each_game_not_across_games():
    # Two parallel games; the egalitarian value is per game (paper Section 4: min over players).
    apples = np.array([[1.0, 5.0, 9.0], [4.0, 4.0, 4.0]])
    np.testing.assert_array_equal(egalitarian(apples), [1.0, 4.0])
    np.testing.assert_array_equal(utilitarian(apples), [15.0, 12.0])
    # eta = 0.5: game 0: 0.5*15 + 0.5*1 = 8 ; game 1: 0.5*12 + 0.5*4 = 8
    np.testing.assert_allclose(interpolated(apples, 0.5), [8.0, 8.0])


def test_interpolated_endpoints():
    u = [2.0, 7.0, 1.0]
    assert float(interpolated(u, 1.0)) == 10.0  # utilitarian
    assert float(interpolated(u, 0.0)) == 1.0  # egalitarian


positive_utilities = st.lists(st.floats(0.1, 100.0), min_size=1, max_size=10)


@SETTINGS
@given(positive_utilities)
def test_nash_matches_brute_product(u):
    product = 1.0
    for x in u:
        product *= x
    assert math.isclose(float(nash_welfare(u)), product ** (1 / len(u)), rel_tol=1e-9)


@SETTINGS
@given(positive_utilities)
def test_nash_between_min_and_mean(u):
    w = float(nash_welfare(u))
    assert min(u) * (1 - 1e-12) <= w <= (sum(u) / len(u)) * (1 + 1e-12)


@SETTINGS
@given(st.lists(st.floats(0.0, 1e6), min_size=1, max_size=10), st.floats(0.0, 1.0))
def test_interpolated_matches_formula(u, eta):
    expected = eta * math.fsum(u) + (1 - eta) * min(u)
    assert math.isclose(float(interpolated(u, eta)), expected, rel_tol=1e-12, abs_tol=1e-6)


def test_nash_zero_and_stability():
    assert float(nash_welfare([0.0, 5.0, 9.0])) == 0.0
    # 400 players with 1e3 apples each: the plain product overflows to inf, the log form does not.
    assert math.isclose(float(nash_welfare(np.full(400, 1e3))), 1e3, rel_tol=1e-12)
    assert math.isclose(float(nash_welfare(np.full(400, 1e-3))), 1e-3, rel_tol=1e-12)


def test_nash_rejects_negative_utilities():
    with pytest.raises(ValueError, match=r"nash_welfare needs utilities >= 0, got u\[1\]=-2\.0"):
        nash_welfare([1.0, -2.0, 3.0])


@pytest.mark.parametrize("eta", [-0.1, 1.5, float("nan")])
def test_interpolated_rejects_bad_eta(eta):
    with pytest.raises(ValueError, match=r"eta=.* is outside \[0, 1\]"):
        interpolated([1.0, 2.0], eta)


@pytest.mark.parametrize("fn", [utilitarian, egalitarian, nash_welfare])
def test_objectives_reject_empty_and_nan(fn):
    with pytest.raises(ValueError, match="last axis of at least one player"):
        fn([])
    with pytest.raises(ValueError, match="must not contain NaN"):
        fn([1.0, float("nan")])


# --- registry --------------------------------------------------------------------------


def test_builtin_registry_entries():
    u = np.array([1.0, 4.0, 16.0])
    assert {"interpolated", "utilitarian", "egalitarian", "nash"} <= set(WELFARE_FUNCTIONS)
    assert math.isclose(float(get_welfare("interpolated")(u, 0.25)), 0.25 * 21 + 0.75 * 1)
    for eta in (0.0, 0.7):  # these three ignore eta
        assert float(get_welfare("utilitarian")(u, eta)) == 21.0
        assert float(get_welfare("egalitarian")(u, eta)) == 1.0
        assert math.isclose(float(get_welfare("nash")(u, eta)), 4.0, rel_tol=1e-12)


def test_custom_welfare_is_used(clean_registry):
    def top_earner(apples, eta):
        return np.max(apples, axis=-1) * (1 + eta)

    register_welfare("top_earner", top_earner)
    fn = get_welfare("top_earner")
    assert fn is top_earner
    assert float(fn(np.array([1.0, 9.0, 3.0]), 0.5)) == 13.5


def test_register_refuses_silent_overwrite(clean_registry):
    with pytest.raises(ValueError, match="'nash' is already registered; pass overwrite=True"):
        register_welfare("nash", lambda a, e: 0.0)

    def replacement(a, e):
        return 1.0

    register_welfare("nash", replacement, overwrite=True)
    assert get_welfare("nash") is replacement


def test_register_rejects_bad_entries(clean_registry):
    with pytest.raises(TypeError, match="must be callable"):
        register_welfare("x", 3)
    with pytest.raises(ValueError, match="non-empty string"):
        register_welfare("", lambda a, e: 0.0)


def test_unknown_welfare_lists_known_names():
    with pytest.raises(
        ValueError, match=r"unknown welfare function 'rawlsian'; known: .*egalitarian.*nash"
    ):
        get_welfare("rawlsian")


# --- metrics ---------------------------------------------------------------------------


def brute_gini(x):
    n = len(x)
    total = sum(x)
    if total == 0:
        return 0.0
    return sum(abs(a - b) for a in x for b in x) / (2 * n * total)


def test_gini_hand_examples():
    # (1, 2, 3): sum_ij |x_i - x_j| = 2*(1 + 2 + 1) = 8 ; 8 / (2*3*6) = 2/9
    assert math.isclose(float(gini([1.0, 2.0, 3.0])), 2 / 9, rel_tol=1e-12)
    assert float(gini([4.0, 4.0, 4.0])) == 0.0
    assert float(equality([4.0, 4.0, 4.0])) == 1.0


@pytest.mark.parametrize("n", [1, 2, 3, 7, 50])
def test_single_holder(n):
    x = np.zeros(n)
    x[-1] = 12.0
    assert math.isclose(float(gini(x)), 1 - 1 / n, abs_tol=1e-12)
    assert math.isclose(float(equality(x)), 1 / n, rel_tol=1e-12)


def test_all_zero_incomes_are_perfectly_equal():
    assert float(gini(np.zeros(7))) == 0.0
    assert float(equality(np.zeros(7))) == 1.0


@SETTINGS
@given(st.lists(st.floats(0.0, 1000.0), min_size=1, max_size=12))
def test_gini_matches_pairwise_definition(x):
    assert math.isclose(float(gini(x)), brute_gini(x), rel_tol=1e-9, abs_tol=1e-12)
    assert 0.0 <= float(equality(x)) <= 1.0


def test_gini_batch_and_negative():
    np.testing.assert_allclose(gini([[1.0, 2.0, 3.0], [0.0, 0.0, 5.0]]), [2 / 9, 2 / 3])
    with pytest.raises(ValueError, match="gini needs incomes >= 0"):
        gini([1.0, -1.0])


def test_productivity():
    apples = np.array([[1, 0, 2], [0, 3, 1]])  # 2 steps x 3 players
    assert float(productivity(apples)) == 7.0
    np.testing.assert_array_equal(productivity(apples, axis=0), [1.0, 3.0, 3.0])


def test_sustainability_hand_example():
    # Steps 0..3 with counts (0, 2, 0, 1): (1*2 + 3*1) / 3 = 5/3
    assert math.isclose(sustainability([0, 2, 0, 1]), 5 / 3, rel_tol=1e-12)
    # Same apples split across two players: pooled, so the same value.
    per_player = [[0, 0], [1, 1], [0, 0], [0, 1]]
    assert math.isclose(sustainability(per_player), 5 / 3, rel_tol=1e-12)
    # Steps numbered from 1: (2*2 + 4*1) / 3 = 8/3
    assert math.isclose(sustainability([0, 2, 0, 1], start=1), 8 / 3, rel_tol=1e-12)


def test_sustainability_no_apples_is_nan():
    assert math.isnan(sustainability(np.zeros(10)))
    assert math.isnan(sustainability(np.zeros((10, 3))))


@SETTINGS
@given(st.lists(st.integers(0, 3), min_size=1, max_size=40))
def test_sustainability_is_mean_eating_time(counts):
    times = [t for t, c in enumerate(counts) for _ in range(c)]  # one entry per apple
    got = sustainability(counts)
    if times:
        assert math.isclose(got, sum(times) / len(times), rel_tol=1e-12)
    else:
        assert math.isnan(got)


def test_sustainability_rejects_bad_input():
    with pytest.raises(ValueError, match="eat_counts must be counts >= 0"):
        sustainability([1, -1])
    with pytest.raises(ValueError, match=r"eat_counts must have shape \(T,\) or \(T, n\)"):
        sustainability(np.zeros((2, 2, 2)))


def test_peace_hand_example():
    zapped = np.zeros((4, 2), dtype=bool)
    zapped[1, 0] = zapped[3, 1] = True  # 2 of 8 player-steps zapped
    assert peace(zapped) == 0.75
    assert peace(np.zeros((5, 7))) == 1.0
    assert peace(np.ones((5, 7))) == 0.0


def test_peace_rejects_bad_input():
    with pytest.raises(ValueError, match="zapped must hold booleans or 0/1"):
        peace([[0, 2]])
    with pytest.raises(ValueError, match="zapped must not be empty"):
        peace(np.zeros((0, 7)))
