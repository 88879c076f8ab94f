"""Tests for sed_meltingpot.core.tax: the bracket tax and redistribution (paper Section 4)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sed_meltingpot.core.tax import (
    DEFAULT_RATE_LEVELS,
    DEFAULT_THRESHOLDS,
    bracket_tax,
    redistribute,
    validate_rates,
    validate_thresholds,
)

SETTINGS = settings(max_examples=200, deadline=None)

RATES = (0.1, 0.2, 0.5)
INCOMES = (0, 5, 10, 15, 25, 40, 100)


# --- independent reference implementations -------------------------------------------


def per_apple_tax(a: int, rates, thresholds) -> float:
    """Tax apple by apple: apple k (k = 1..a) lies in bracket b iff tau_b < k <= tau_{b+1}."""
    total = 0.0
    for k in range(1, a + 1):
        for b in range(len(rates)):
            if thresholds[b] < k <= thresholds[b + 1]:
                total += rates[b]
                break
    return total


def literal_formula_tax(a: float, rates, thresholds) -> float:
    """The paper's formula, term by term with explicit indicators."""
    total = 0.0
    for b in range(len(rates)):
        lo, hi = thresholds[b], thresholds[b + 1]
        if a > hi:
            total += rates[b] * (hi - lo)
        elif lo < a <= hi:
            total += rates[b] * (a - lo)
    return total


rate_vectors = st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3)
incomes_float = st.lists(st.floats(0.0, 20000.0), min_size=1, max_size=9)


@st.composite
def int_brackets(draw):
    """Integer thresholds (1 to 5 brackets) and one rate per bracket."""
    num_brackets = draw(st.integers(1, 5))
    start = draw(st.integers(0, 5))
    widths = draw(st.lists(st.integers(1, 15), min_size=num_brackets, max_size=num_brackets))
    thresholds = tuple(int(x) for x in np.cumsum([start, *widths]))
    rates = draw(st.lists(st.floats(0.0, 1.0), min_size=num_brackets, max_size=num_brackets))
    return thresholds, rates


# --- defaults --------------------------------------------------------------------------


def test_defaults_match_paper_appendix():
    # Paper Appendix A: brackets (1,10), (11,20), (21,10000) apples; 11 levels per bracket.
    assert DEFAULT_THRESHOLDS == (0, 10, 20, 10000)
    assert DEFAULT_RATE_LEVELS == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


# --- hand-worked example ---------------------------------------------------------------


def test_hand_worked_tax():
    # rates (0.1, 0.2, 0.5) on brackets (0,10], (10,20], (20,10000]:
    #   0   -> 0
    #   5   -> 0.1*5                       = 0.5
    #   10  -> 0.1*10                      = 1.0
    #   15  -> 0.1*10 + 0.2*5              = 2.0
    #   25  -> 0.1*10 + 0.2*10 + 0.5*5     = 1 + 2 + 2.5  = 5.5
    #   40  -> 0.1*10 + 0.2*10 + 0.5*20    = 1 + 2 + 10   = 13.0
    #   100 -> 0.1*10 + 0.2*10 + 0.5*80    = 1 + 2 + 40   = 43.0
    expected = [0.0, 0.5, 1.0, 2.0, 5.5, 13.0, 43.0]
    np.testing.assert_allclose(bracket_tax(INCOMES, RATES), expected, rtol=0, atol=1e-12)


def test_hand_worked_redistribution():
    # Total tax = 0 + 0.5 + 1 + 2 + 5.5 + 13 + 43 = 65, each of 7 players gets 65/7 back.
    share = 65 / 7
    expected = [
        0 - 0.0 + share,  # 9.2857...
        5 - 0.5 + share,  # 13.7857...
        10 - 1.0 + share,  # 18.2857...
        15 - 2.0 + share,  # 22.2857...
        25 - 5.5 + share,  # 28.7857...
        40 - 13.0 + share,  # 36.2857...
        100 - 43.0 + share,  # 66.2857...
    ]
    got = redistribute(INCOMES, RATES)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[0], 9.285714285714286, rtol=0, atol=1e-12)
    assert math.isclose(got.sum(), sum(INCOMES), abs_tol=1e-9)  # 195 apples in, 195 out


def test_income_above_top_threshold_is_untaxed_beyond_it():
    # 0.1*10 + 0.2*10 + 0.5*(10000-20) = 1 + 2 + 4990 = 4993 for any income >= 10000.
    got = bracket_tax([10000, 20000, 1e9], RATES)
    np.testing.assert_allclose(got, [4993.0, 4993.0, 4993.0], rtol=0, atol=1e-9)


def test_open_top_bracket_with_infinite_threshold():
    # thresholds (0, 10, inf): 0.5*10 + 0.25*(1e6 - 10) = 5 + 249997.5
    got = bracket_tax([1e6, 4.0], (0.5, 0.25), thresholds=(0, 10, np.inf))
    np.testing.assert_allclose(got, [250002.5, 2.0], rtol=0, atol=1e-9)


def test_income_at_or_below_first_threshold_is_untaxed():
    got = bracket_tax([-5.0, 0.0, 3.0], (1.0, 1.0), thresholds=(3, 10, 20))
    np.testing.assert_array_equal(got, [0.0, 0.0, 0.0])


def test_scalar_income():
    # 12 apples: 0.1*10 + 0.2*2 = 1.4
    assert math.isclose(float(bracket_tax(12, RATES)), 1.4, abs_tol=1e-12)


# --- properties ------------------------------------------------------------------------


@SETTINGS
@given(st.lists(st.integers(0, 100), min_size=1, max_size=9), int_brackets())
def test_per_apple_brute_force_matches(incomes, brackets):
    thresholds, rates = brackets
    expected = [per_apple_tax(a, rates, thresholds) for a in incomes]
    np.testing.assert_allclose(bracket_tax(incomes, rates, thresholds), expected, atol=1e-9)


@SETTINGS
@given(incomes_float, rate_vectors)
def test_literal_formula_matches_on_real_incomes(incomes, rates):
    expected = [literal_formula_tax(a, rates, DEFAULT_THRESHOLDS) for a in incomes]
    np.testing.assert_allclose(bracket_tax(incomes, rates), expected, rtol=1e-12, atol=1e-9)


@SETTINGS
@given(incomes_float)
def test_zero_rates_zero_tax(incomes):
    np.testing.assert_array_equal(bracket_tax(incomes, (0.0, 0.0, 0.0)), np.zeros(len(incomes)))
    np.testing.assert_allclose(redistribute(incomes, (0.0, 0.0, 0.0)), incomes, rtol=0, atol=0)


@SETTINGS
@given(incomes_float, rate_vectors)
def test_tax_between_zero_and_income(incomes, rates):
    tax = bracket_tax(incomes, rates)
    assert np.all(tax >= 0)
    assert np.all(tax <= np.asarray(incomes) + 1e-9)


@SETTINGS
@given(st.floats(0.0, 20000.0), st.floats(0.0, 20000.0), rate_vectors)
def test_tax_non_decreasing_in_income(a1, a2, rates):
    lo, hi = min(a1, a2), max(a1, a2)
    assert bracket_tax(lo, rates) <= bracket_tax(hi, rates) + 1e-9


@SETTINGS
@given(incomes_float, rate_vectors)
def test_budget_balance(incomes, rates):
    got = redistribute(incomes, rates)
    assert math.isclose(math.fsum(got), math.fsum(incomes), rel_tol=1e-12, abs_tol=1e-7)


@SETTINGS
@given(st.lists(st.integers(0, 10000), min_size=1, max_size=9))
def test_full_taxation_equalises_to_mean(incomes):
    got = redistribute(incomes, (1.0, 1.0, 1.0))
    mean = math.fsum(incomes) / len(incomes)
    np.testing.assert_allclose(got, np.full(len(incomes), mean), rtol=1e-15, atol=1e-12)
    assert np.all(got == got[0])  # exactly equal to each other


@SETTINGS
@given(st.lists(st.floats(0.0, 10000.0), min_size=1, max_size=9))
def test_full_taxation_equalises_real_incomes(incomes):
    got = redistribute(incomes, (1.0, 1.0, 1.0))
    mean = math.fsum(incomes) / len(incomes)
    np.testing.assert_allclose(got, np.full(len(incomes), mean), rtol=1e-12, atol=1e-9)


@SETTINGS
@given(
    hnp.arrays(
        float, hnp.array_shapes(min_dims=2, max_dims=3, max_side=5), elements=st.floats(0, 200)
    ),
    rate_vectors,
)
def test_batch_equals_loop_over_rows(incomes, rates):
    rows = incomes.reshape(-1, incomes.shape[-1])
    tax_loop = np.stack([bracket_tax(r, rates) for r in rows]).reshape(incomes.shape)
    red_loop = np.stack([redistribute(r, rates) for r in rows]).reshape(incomes.shape)
    np.testing.assert_allclose(bracket_tax(incomes, rates), tax_loop, rtol=0, atol=1e-12)
    np.testing.assert_allclose(redistribute(incomes, rates), red_loop, rtol=0, atol=1e-12)


def test_redistribution_pools_only_within_a_game():
    # Two games side by side: the rich game's tax must not leak into the poor one.
    got = redistribute([[0, 0], [0, 40]], (1.0, 1.0, 1.0))
    np.testing.assert_allclose(got, [[0.0, 0.0], [20.0, 20.0]])


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rates", "match"),
    [
        ((0.1, 1.5, 0.2), r"rates\[1\]=1\.5 is outside \[0, 1\]"),
        ((-0.1, 0.5, 0.2), r"rates\[0\]=-0\.1 is outside \[0, 1\]"),
        ((0.1, float("nan"), 0.2), r"rates\[1\]=nan is outside \[0, 1\]"),
        ((0.1, 0.2), r"rates has length 2, expected 3 \(one per bracket\)"),
        (((0.1, 0.2, 0.3),), r"rates must be a 1-D sequence"),
        ((), r"rates must have at least one bracket"),
    ],
)
def test_bad_rates(rates, match):
    with pytest.raises(ValueError, match=match):
        bracket_tax([1, 2, 3], rates)
    with pytest.raises(ValueError, match=match):
        redistribute([1, 2, 3], rates)


def test_validate_rates_uses_given_name_and_returns_floats():
    with pytest.raises(ValueError, match=r"phi\[2\]=2\.0 is outside \[0, 1\]"):
        validate_rates([0, 0, 2], num_brackets=3, name="phi")
    out = validate_rates([0, 1, 0.5])
    assert out.dtype == float
    np.testing.assert_array_equal(out, [0.0, 1.0, 0.5])


@pytest.mark.parametrize(
    ("thresholds", "match"),
    [
        ((0, 20, 10), r"thresholds must be strictly increasing, got \(0, 20, 10\)"),
        ((0, 10, 10, 20), r"thresholds must be strictly increasing, got \(0, 10, 10, 20\)"),
        ((0, float("nan"), 20), r"thresholds must not contain NaN"),
        ((5,), r"thresholds must be a 1-D sequence of at least 2 bracket edges"),
        ((-np.inf, 10, 20), r"thresholds must be finite \(only the top edge may be \+inf\)"),
    ],
)
def test_bad_thresholds(thresholds, match):
    with pytest.raises(ValueError, match=match):
        validate_thresholds(thresholds)
    with pytest.raises(ValueError, match=match):
        bracket_tax([1.0], [0.5] * max(1, len(thresholds) - 1), thresholds)


def test_bad_income():
    with pytest.raises(ValueError, match="income must not contain NaN"):
        bracket_tax([1.0, float("nan")], RATES)
    with pytest.raises(ValueError, match="income must have a last axis of at least one player"):
        redistribute(3.0, RATES)
