"""Tests for sed_meltingpot.core.voting: social choice functions sigma -> eta (paper Section 4)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sed_meltingpot.core.voting import (
    VOTING_RULES,
    VotingRule,
    get_voting_rule,
    majority_vote,
    mean_vote,
    median_vote,
    register_voting_rule,
    vote,
)

SETTINGS = settings(max_examples=200, deadline=None)

types = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=15)


@pytest.fixture
def clean_registry():
    saved = dict(VOTING_RULES)
    yield
    VOTING_RULES.clear()
    VOTING_RULES.update(saved)


# --- mean (the paper's f) --------------------------------------------------------------


def test_mean_hand_example():
    # (0.1 + 0.4 + 0.7) / 3 = 0.4
    assert math.isclose(mean_vote([0.1, 0.4, 0.7]), 0.4, rel_tol=1e-12)


def test_mean_blend_with_principal_type():
    # (1 - 0.5) * 0.4 + 0.5 * 1.0 = 0.7
    assert math.isclose(mean_vote([0.1, 0.4, 0.7], principal_type=1.0, principal_weight=0.5), 0.7)
    # w = 1: the principal alone decides; w = 0: its type is ignored.
    assert mean_vote([0.1, 0.4, 0.7], principal_type=0.2, principal_weight=1.0) == 0.2
    assert math.isclose(mean_vote([0.1, 0.4, 0.7], principal_type=0.9), 0.4, rel_tol=1e-12)


@SETTINGS
@given(types)
def test_mean_matches_fsum(sigma):
    eta = mean_vote(sigma)
    assert math.isclose(eta, math.fsum(sigma) / len(sigma), rel_tol=1e-12, abs_tol=1e-15)
    assert 0.0 <= eta <= 1.0


@SETTINGS
@given(types, st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_blend_formula(sigma, theta, w):
    expected = (1 - w) * (math.fsum(sigma) / len(sigma)) + w * theta
    got = mean_vote(sigma, principal_type=theta, principal_weight=w)
    assert math.isclose(got, expected, rel_tol=1e-12, abs_tol=1e-15)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"principal_type": 0.5, "principal_weight": 1.5},
            r"principal_weight=1\.5 is outside \[0, 1\]",
        ),
        (
            {"principal_type": -0.5, "principal_weight": 0.5},
            r"principal_type=-0\.5 is outside \[0, 1\]",
        ),
        ({"principal_weight": 0.5}, r"principal_type must be given \(in \[0, 1\]\)"),
    ],
)
def test_mean_blend_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mean_vote([0.3, 0.6], **kwargs)


# --- median and majority ---------------------------------------------------------------


def test_median_hand_examples():
    assert median_vote([0.9, 0.1, 0.4]) == 0.4
    # even n: mean of the two middle values (0.2 + 0.6) / 2 = 0.4
    assert math.isclose(median_vote([0.1, 0.9, 0.2, 0.6]), 0.4, rel_tol=1e-12)


def test_majority_hand_examples():
    assert majority_vote([0.6, 0.7, 0.1]) == 1.0  # two vote utilitarian
    assert majority_vote([0.4, 0.3, 0.9]) == 0.0  # two vote egalitarian
    assert majority_vote([0.5, 0.5, 0.2]) == 1.0  # sigma = 0.5 votes utilitarian
    assert majority_vote([0.5, 0.49]) == 0.5  # tie
    assert majority_vote([0.9, 0.8, 0.1, 0.0]) == 0.5  # tie


@SETTINGS
@given(types)
def test_majority_matches_counting(sigma):
    yes = sum(1 for s in sigma if s >= 0.5)
    no = len(sigma) - yes
    expected = 1.0 if yes > no else 0.0 if no > yes else 0.5
    assert majority_vote(sigma) == expected


@SETTINGS
@given(types)
def test_median_matches_sorted_middle(sigma):
    s = sorted(sigma)
    n = len(s)
    expected = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    assert math.isclose(median_vote(sigma), expected, rel_tol=1e-12, abs_tol=1e-15)


@pytest.mark.parametrize("rule", [mean_vote, median_vote, majority_vote])
def test_rules_reject_bad_types(rule):
    with pytest.raises(ValueError, match=r"selfishness\[1\]=1\.2 is outside \[0, 1\]"):
        rule([0.3, 1.2])
    with pytest.raises(ValueError, match="selfishness must have at least one player"):
        rule([])


# --- registry --------------------------------------------------------------------------


def test_builtin_rules_registered():
    sigma = np.array([0.1, 0.4, 0.7, 0.8])
    assert get_voting_rule("mean")(sigma) == pytest.approx(0.5)
    assert get_voting_rule("median")(sigma) == pytest.approx(0.55)
    assert get_voting_rule("majority")(sigma) == 0.5
    for name in ("mean", "median", "majority"):
        assert isinstance(get_voting_rule(name), VotingRule)


def test_custom_rule(clean_registry):
    def most_selfish(sigma):
        return float(np.max(sigma))

    register_voting_rule("max", most_selfish)
    assert get_voting_rule("max") is most_selfish
    assert vote("max", [0.2, 0.9, 0.1]) == 0.9


def test_register_refuses_silent_overwrite(clean_registry):
    with pytest.raises(ValueError, match="'mean' is already registered; pass overwrite=True"):
        register_voting_rule("mean", median_vote)
    register_voting_rule("mean", median_vote, overwrite=True)
    assert get_voting_rule("mean") is median_vote


def test_register_rejects_non_callable(clean_registry):
    with pytest.raises(TypeError, match="must be callable"):
        register_voting_rule("bad", 0.5)


def test_unknown_rule_lists_known_names():
    with pytest.raises(ValueError, match=r"unknown voting rule 'borda'; known: majority, mean"):
        get_voting_rule("borda")


def test_vote_checks_the_rules_output():
    assert vote("mean", [0.2, 0.4]) == pytest.approx(0.3)
    assert vote(majority_vote, [0.9, 0.8, 0.1]) == 1.0
    with pytest.raises(ValueError, match=r"eta=2\.0 is outside \[0, 1\]"):
        vote(lambda s: 2.0, [0.5])
    with pytest.raises(ValueError, match="expected one eta"):
        vote(lambda s: [0.1, 0.2], [0.5])
