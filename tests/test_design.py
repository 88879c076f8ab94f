"""The principal's algorithms (sed_meltingpot/design, issue 30 item 5): the designer
interface, the bandits' arithmetic against hand-worked numbers, and successive
halving's budgets and cuts. Pure numpy, no training: part of the default run."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sed_meltingpot.design import (
    UCB,
    Designer,
    EpsilonGreedy,
    PerEtaBucket,
    Rung,
    Thompson,
    arm_grid,
    halving_plan,
    keep_best,
)
from sed_meltingpot.design.bandits import detrended_effects
from sed_meltingpot.design.halving import choose, least_tax_within_se, plan_cost
from sed_meltingpot.design.protocol import check_arms

THREE = ((0.0, 0.0, 0.0), (0.5, 0.5, 0.5), (1.0, 1.0, 1.0))


# ------------------------------------------------------------------ protocol
def test_arm_grid_is_the_27_schedules_in_a_fixed_order():
    arms = arm_grid()
    assert len(arms) == 27 and len(set(arms)) == 27
    assert arms[0] == (0.0, 0.0, 0.0) and arms[1] == (0.0, 0.0, 0.5)
    assert arms[3] == (0.0, 0.5, 0.0) and arms[9] == (0.5, 0.0, 0.0)
    assert arms[13] == (0.5, 0.5, 0.5) and arms[-1] == (1.0, 1.0, 1.0)
    assert arm_grid() == arms  # the same order every call
    assert arm_grid((0.0, 1.0), brackets=2) == ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0))


def test_arm_errors_name_the_argument():
    with pytest.raises(ValueError, match="brackets must be an integer >= 1"):
        arm_grid(brackets=0)
    with pytest.raises(ValueError, match=r"levels must be one or more rates in \[0, 1\]"):
        arm_grid(levels=(0.0, 1.5))
    with pytest.raises(ValueError, match="levels must be distinct"):
        arm_grid(levels=(0.0, 0.0))
    with pytest.raises(ValueError, match="arms must hold at least one"):
        check_arms(())
    with pytest.raises(ValueError, match="same number"):
        check_arms(((0.0,), (0.0, 1.0)))
    with pytest.raises(ValueError, match="arms must be distinct"):
        check_arms(((0.0,), (0.0,)))


def test_every_bandit_is_a_designer():
    for designer in (UCB(THREE), Thompson(THREE), EpsilonGreedy(THREE)):
        assert isinstance(designer, Designer)
        schedule = designer.propose(np.random.default_rng(0))
        assert schedule in THREE
        designer.observe(schedule, 1.0)
        assert designer.best() == schedule
    with pytest.raises(ValueError, match="schedule must be one of the 3 arms"):
        UCB(THREE).observe((0.2, 0.2, 0.2), 1.0)
    with pytest.raises(ValueError, match="score must be a finite number"):
        UCB(THREE).observe(THREE[0], math.nan)
    with pytest.raises(ValueError, match="at least one observation"):
        UCB(THREE).best()


# ------------------------------------------------------------------ UCB
def test_ucb_indices_against_hand_worked_numbers():
    """3 arms, c = 1. Pulls 1-3 are the arms in order, rewards 1, 0, 0.5.

    Pull 4 (t = 3 plays done, ln 3 = 1.098612, every n = 1):
      bonus = sqrt(2 * 1.098612 / 1) = 1.482304
      indices 1 + 1.482304 = 2.482304, 0 + 1.482304, 0.5 + 1.482304 = 1.982304 -> arm 0.
    Arm 0 then scores 0: mean 0.5, n = 2.
    Pull 5 (t = 4, 2 ln 4 = 2.772589):
      arm 0: 0.5 + sqrt(2.772589 / 2) = 0.5 + 1.177410 = 1.677410
      arm 1: 0.0 + sqrt(2.772589)     =       1.665109
      arm 2: 0.5 + sqrt(2.772589)     = 0.5 + 1.665109 = 2.165109 -> arm 2.
    """
    rng = np.random.default_rng(0)
    ucb = UCB(THREE, c=1.0)
    for arm, reward in zip(THREE, (1.0, 0.0, 0.5), strict=True):
        assert ucb.propose(rng) == arm  # each arm once, in order
        ucb.observe(arm, reward)
    np.testing.assert_allclose(ucb.indices(), [2.482304, 1.482304, 1.982304], atol=1e-6)
    assert ucb.propose(rng) == THREE[0]
    ucb.observe(THREE[0], 0.0)
    np.testing.assert_array_equal(ucb.counts, [2, 1, 1])
    np.testing.assert_allclose(ucb.means, [0.5, 0.0, 0.5])
    np.testing.assert_allclose(ucb.indices(), [1.677410, 1.665109, 2.165109], atol=1e-6)
    assert ucb.propose(rng) == THREE[2]
    assert ucb.best() == THREE[0]  # means tie at 0.5: the lowest index


def test_ucb_scale_and_ties():
    ucb = UCB(THREE, c=0.0)  # no bonus: greedy on the means
    for arm, reward in zip(THREE, (0.0, 2.0, 2.0), strict=True):
        ucb.observe(arm, reward)
    assert ucb.propose(np.random.default_rng(0)) == THREE[1]  # a tie: the lowest index
    with pytest.raises(ValueError, match="c must be a finite number >= 0"):
        UCB(THREE, c=-1.0)


@settings(max_examples=50, deadline=None)
@given(num_arms=st.integers(1, 8), c=st.floats(0.0, 10.0),
       rewards=st.lists(st.floats(-1e3, 1e3), min_size=8, max_size=8))
def test_ucb_pulls_every_arm_once_before_repeating(num_arms, c, rewards):
    arms = arm_grid(tuple(i / 7 for i in range(num_arms)), brackets=1)
    ucb = UCB(arms, c=c)
    rng = np.random.default_rng(0)
    pulled = []
    for i in range(num_arms):
        arm = ucb.propose(rng)
        pulled.append(arm)
        ucb.observe(arm, rewards[i])
    assert pulled == list(arms)
    assert (ucb.counts == 1).all()


# ------------------------------------------------------------------ UCB, detrended
ONE = ((0.0,), (1.0,))


def test_detrended_ucb_against_hand_worked_numbers():
    """Arm 0 scores 10 then 14, arm 1 then scores 16: the players improve by 4 a step.

    Plain means: arm 0 12, arm 1 16 -> arm 1. Degree 1, t centred on the mean step 1
    (tc = -1, 0, 1), score = e[arm] + b tc: arm 0 gives 10 = e0 - b and 14 = e0, so
    e0 = 14, b = 4; arm 1 gives 16 = e1 + 4, e1 = 12 -> arm 0, 2 apples better at the
    same point of the players' learning.
    """
    plain, detrended = UCB(ONE, c=0.0), UCB(ONE, c=0.0, detrend=1)
    for bandit in (plain, detrended):
        for arm, score in ((ONE[0], 10.0), (ONE[0], 14.0), (ONE[1], 16.0)):
            bandit.observe(arm, score)
    np.testing.assert_allclose(plain.estimates(), [12.0, 16.0])
    np.testing.assert_allclose(detrended.estimates(), [14.0, 12.0])
    assert plain.propose(np.random.default_rng(0)) == ONE[1] and plain.best() == ONE[1]
    assert detrended.propose(np.random.default_rng(0)) == ONE[0] and detrended.best() == ONE[0]
    np.testing.assert_allclose(detrended.means, [12.0, 16.0])  # the means are still logged
    # c = 1 at t = 3: arm 0's bonus sqrt(2 ln 3 / 2) = 1.048147, arm 1's sqrt(2 ln 3) = 1.482304.
    np.testing.assert_allclose(UCB(ONE, c=1.0, detrend=1).indices(), [np.inf, np.inf])
    detrended.c = 1.0
    np.testing.assert_allclose(detrended.indices(), [15.048147, 13.482304], atol=1e-6)


def test_detrended_ucb_falls_back_on_the_means_until_the_fit_is_determined():
    ucb = UCB(ONE, c=0.0, detrend=1)
    ucb.observe(ONE[0], 10.0)
    ucb.observe(ONE[1], 16.0)  # each arm once: a trend is not told apart from the arms
    assert detrended_effects(ucb.pulls, ucb.scores, 2, 1) is None
    np.testing.assert_allclose(ucb.estimates(), [10.0, 16.0])
    assert detrended_effects([0, 0, 1], [1.0, 2.0, 3.0], 2, 2) is None  # 4 parameters, 3 scores
    effects = detrended_effects([1, 1], [3.0, 5.0], 3, 0)  # degree 0: the means, NaN unpulled
    assert np.isnan(effects[0]) and effects[1] == pytest.approx(4.0) and np.isnan(effects[2])


@settings(max_examples=30, deadline=None)
@given(effects=st.lists(st.floats(-100, 100), min_size=3, max_size=3),
       slope=st.floats(-10, 10), curve=st.floats(-1, 1), seed=st.integers(0, 1000))
def test_detrending_recovers_arm_effects_under_any_quadratic_trend(effects, slope, curve,
                                                                   seed):
    """Scores made exactly of an arm effect plus a common quadratic trend in the step:
    the degree-2 fit returns the effects up to one constant (their differences)."""
    rng = np.random.default_rng(seed)
    pulls = np.concatenate([[0, 1, 2], rng.integers(0, 3, size=9)])
    t = np.arange(len(pulls), dtype=np.float64)
    scores = np.asarray(effects)[pulls] + slope * t + curve * t**2
    fitted = detrended_effects(pulls.tolist(), scores.tolist(), 3, 2)
    if fitted is None:  # the random order left the trend confounded with the arms
        return
    np.testing.assert_allclose(fitted - fitted[0], np.asarray(effects) - effects[0],
                               atol=1e-6 * (1 + abs(slope) + 100 * abs(curve)))


def test_detrend_must_be_a_small_degree():
    with pytest.raises(ValueError, match="detrend must be 0, 1 or 2"):
        UCB(ONE, detrend=3)
    with pytest.raises(ValueError, match="detrend must be 0, 1 or 2"):
        UCB(ONE, detrend=True)


# ------------------------------------------------------------------ Thompson
def test_thompson_posterior_against_the_closed_form():
    """Prior N(0, 1), noise sd 1, observations 1 and 3 on arm 0:
    precision = 1/1 + 2/1 = 3 -> variance 1/3; mean = (0/1 + (1 + 3)/1) / 3 = 4/3.
    Prior N(2, 2^2), noise sd 0.5, one observation 1 on arm 1:
    precision = 1/4 + 1/0.25 = 4.25 -> variance 1/4.25 = 0.235294;
    mean = (2/4 + 1/0.25) / 4.25 = 4.5 / 4.25 = 1.058824."""
    ts = Thompson(THREE, noise_sd=1.0, prior_mean=0.0, prior_sd=1.0)
    ts.observe(THREE[0], 1.0)
    ts.observe(THREE[0], 3.0)
    np.testing.assert_allclose(ts.posterior_mean, [4 / 3, 0.0, 0.0])
    np.testing.assert_allclose(ts.posterior_var, [1 / 3, 1.0, 1.0])
    assert ts.best() == THREE[0]

    other = Thompson(THREE, noise_sd=0.5, prior_mean=2.0, prior_sd=2.0)
    other.observe(THREE[1], 1.0)
    np.testing.assert_allclose(other.posterior_var, [4.0, 1 / 4.25, 4.0])
    np.testing.assert_allclose(other.posterior_mean, [2.0, 4.5 / 4.25, 2.0])
    assert other.best() == THREE[0]  # 2.0 ties with arm 2: the lowest index


def test_thompson_propose_samples_each_posterior_with_the_given_rng():
    ts = Thompson(THREE)
    for arm, score in zip(THREE, (0.0, 1.0, 0.5), strict=True):
        ts.observe(arm, score)
    for seed in range(20):
        draws = np.random.default_rng(seed).normal(ts.posterior_mean,
                                                   np.sqrt(ts.posterior_var))
        assert ts.propose(np.random.default_rng(seed)) == THREE[int(np.argmax(draws))]
    # An arm far ahead with a tight posterior wins almost every draw.
    sharp = Thompson(THREE, noise_sd=0.1)
    for arm, score in zip(THREE, (0.0, 5.0, 0.0), strict=True):
        sharp.observe(arm, score)
    rng = np.random.default_rng(1)
    assert sum(sharp.propose(rng) == THREE[1] for _ in range(200)) == 200
    with pytest.raises(ValueError, match="noise_sd must be a finite number > 0"):
        Thompson(THREE, noise_sd=0.0)


# ------------------------------------------------------------------ epsilon-greedy
def test_epsilon_greedy_tries_unpulled_arms_first_then_the_best_mean():
    eg = EpsilonGreedy(THREE, epsilon=0.0)
    rng = np.random.default_rng(0)
    for arm, score in zip(THREE, (0.0, 2.0, 1.0), strict=True):
        assert eg.propose(rng) == arm
        eg.observe(arm, score)
    assert eg.greedy() == 1 and eg.propose(rng) == THREE[1]
    with pytest.raises(ValueError, match=r"epsilon must be in \[0, 1\]"):
        EpsilonGreedy(THREE, epsilon=1.5)


def test_epsilon_greedy_exploration_share_is_binomial():
    """4 arms, arm 2 best, epsilon 0.2: a proposal leaves the greedy arm with
    probability 0.2 * 3/4 = 0.15; over 4000 draws its share lies within 4 binomial
    standard deviations, sqrt(0.15 * 0.85 / 4000) = 0.00565, of 0.15."""
    arms = arm_grid((0.0, 0.25, 0.5, 1.0), brackets=1)
    eg = EpsilonGreedy(arms, epsilon=0.2)
    for arm, score in zip(arms, (0.0, 1.0, 3.0, 2.0), strict=True):
        eg.observe(arm, score)
    rng = np.random.default_rng(7)
    n = 4000
    away = sum(eg.propose(rng) != arms[2] for _ in range(n)) / n
    sd = math.sqrt(0.15 * 0.85 / n)
    assert abs(away - 0.15) < 4 * sd, away
    np.testing.assert_array_equal(eg.counts, [1, 1, 1, 1])  # propose changes nothing


# ------------------------------------------------------------------ per eta
def test_per_eta_bucket_routes_by_eta():
    per = PerEtaBucket(lambda: UCB(THREE), edges=(1 / 3, 2 / 3))
    assert len(per.designers) == 3
    assert [per.bucket_of(e) for e in (0.0, 0.2, 1 / 3, 0.5, 2 / 3, 1.0)] == [0, 0, 1, 1, 2, 2]
    rng = np.random.default_rng(0)
    per.observe(per.propose(rng, eta=0.5), 1.0, eta=0.5)
    per.observe(THREE[2], 4.0, eta=1.0)
    per.observe(THREE[2], 2.0, eta=0.9)
    np.testing.assert_array_equal(per.designers[0].counts, [0, 0, 0])
    np.testing.assert_array_equal(per.designers[1].counts, [1, 0, 0])
    np.testing.assert_array_equal(per.designers[2].counts, [0, 0, 2])
    assert per.best(eta=1.0) == THREE[2] and per.best(eta=0.4) == THREE[0]
    # Bucket 1 has pulled arm 0 only: its next proposal is arm 1, bucket 0's is arm 0.
    assert per.propose(rng, eta=0.5) == THREE[1] and per.propose(rng, eta=0.0) == THREE[0]
    with pytest.raises(ValueError, match="edges must be finite and strictly increasing"):
        PerEtaBucket(lambda: UCB(THREE), edges=(0.5, 0.5))
    shared = UCB(THREE)
    with pytest.raises(ValueError, match="factory must return a new designer"):
        PerEtaBucket(lambda: shared, edges=(0.5,))
    with pytest.raises(ValueError, match="eta must be a finite number"):
        per.bucket_of(math.nan)
    assert len(PerEtaBucket(lambda: UCB(THREE), edges=()).designers) == 1


# ------------------------------------------------------------------ successive halving
def test_halving_plan_against_a_hand_worked_table():
    """27 candidates, factor 3, budgets 1 to 9, first cut at 1:

    | rung | candidates | budget | keep | total (restart) | added (resume) |
    |------|------------|--------|------|-----------------|----------------|
    | 0    | 27         | 1      | 9    | 27              | 27             |
    | 1    | 9          | 3      | 3    | 27              | 9 x 2 = 18     |
    | 2    | 3          | 9      | 1    | 27              | 3 x 6 = 18     |
    """
    plan = halving_plan(27, 1, reduction=3, max_budget=9, first_cut_budget=1)
    assert plan == [Rung(27, 1, 9, 27, 27), Rung(9, 3, 3, 27, 18), Rung(3, 9, 1, 27, 18)]
    assert plan_cost(plan) == 63 and plan_cost(plan, resume=False) == 81
    # No cap: the candidates run out first (3 // 3 = 1 ends the plan).
    assert halving_plan(27, 1, reduction=3, first_cut_budget=1) == plan


def test_halving_plan_makes_no_cut_before_the_first_cut_budget():
    """First cut at 3 (between ladder budgets 1 and 3 nothing is scored): all 27 train
    to 3, then 9 to 9: | 27 | 3 | 9 | 81 | 81 | and | 9 | 9 | 1 | 81 | 9 x 6 = 54 |."""
    plan = halving_plan(27, 1, reduction=3, max_budget=9, first_cut_budget=3)
    assert plan == [Rung(27, 3, 9, 81, 81), Rung(9, 9, 1, 81, 54)]
    # A first cut between ladder budgets waits for the next one (2 -> 3).
    assert halving_plan(27, 1, reduction=3, max_budget=9, first_cut_budget=2) == plan
    # Factor 2, a cap off the ladder: budgets 5, 10, then 12 (capped).
    assert halving_plan(10, 5, reduction=2, max_budget=12, first_cut_budget=5) == [
        Rung(10, 5, 5, 50, 50), Rung(5, 10, 2, 50, 25), Rung(2, 12, 1, 24, 4)]
    # The cut at max_budget: one rung, everyone trained in full.
    assert halving_plan(8, 1, reduction=2, max_budget=4, first_cut_budget=4) == [
        Rung(8, 4, 1, 32, 32)]
    assert halving_plan(1, 2, first_cut_budget=2) == [Rung(1, 2, 1, 2, 2)]


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_candidates=0, min_budget=1), "num_candidates must be an integer >= 1, got 0"),
    (dict(num_candidates=4, min_budget=0), "min_budget must be an integer >= 1, got 0"),
    (dict(num_candidates=4, min_budget=1, reduction=1), "reduction must be an integer >= 2, got 1"),
    (dict(num_candidates=4, min_budget=1, reduction=2.5),
     "reduction must be an integer >= 2, got 2.5"),
    (dict(num_candidates=4, min_budget=4, max_budget=2), "max_budget must be an integer >= 4"),
    (dict(num_candidates=4, min_budget=2, max_budget=8, first_cut_budget=9),
     r"first_cut_budget must be an integer in \[2, 8\], got 9"),
    (dict(num_candidates=4, min_budget=2, first_cut_budget=1),
     "first_cut_budget must be an integer >= 2, got 1"),
])
def test_halving_plan_argument_errors(kwargs, message):
    kwargs.setdefault("first_cut_budget", kwargs["min_budget"])
    with pytest.raises(ValueError, match=message):
        halving_plan(**kwargs)
    with pytest.raises(TypeError):
        halving_plan(4, 1, 2, 8)  # first_cut_budget must be stated


def test_keep_best_is_deterministic_on_ties():
    assert keep_best([1.0, 3.0, 3.0, 2.0], 3) == (1, 2, 3)
    assert keep_best([5.0, 5.0, 5.0], 2) == (0, 1)
    assert keep_best([-1.0, -math.inf, 0.0], 1) == (2,)
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 3\], got 4"):
        keep_best([1.0, 2.0, 3.0], 4)
    with pytest.raises(ValueError, match="scores must not be NaN"):
        keep_best([1.0, math.nan], 1)
    with pytest.raises(ValueError, match="at least one score"):
        keep_best([], 1)


NONE, FLAT30, FLAT100 = (0.0, 0.0, 0.0), (0.3, 0.3, 0.3), (1.0, 1.0, 1.0)


def test_least_tax_within_one_paired_se_by_hand():
    # flat 30% is best (mean 51.75); none's paired d = [7, 2, 7, -6]: mean 2.5,
    # sd sqrt(113 / 3) = 6.137, se 3.069 >= 2.5, so none is within and taxes least.
    # flat100's d = [17, 15, 17, 2]: mean 12.75, sd 7.18, se 3.59: out.
    scores = [[50, 58, 51, 38], [57, 60, 58, 32], [40, 45, 41, 30]]
    candidates = [NONE, FLAT30, FLAT100]
    assert choose("best", candidates, scores) == 1
    assert least_tax_within_se(candidates, scores) == 0 == choose("least_tax", candidates,
                                                                   scores)
    # The same mean lead, but on every seed (d = 7, 7, 7, 7: se 0): the best stays.
    steady = [[50, 58, 51, 38], [57, 65, 58, 45], [40, 45, 41, 30]]
    assert least_tax_within_se(candidates, steady) == 1
    # One seed: no error is known, the best is returned.
    assert least_tax_within_se(candidates, [[50], [57], [40]]) == 1
    # Equal mean rates: the higher score, then the lower index.
    regressive, progressive = (0.5, 0.3, 0.1), (0.1, 0.3, 0.5)
    assert least_tax_within_se([regressive, progressive, FLAT100],
                               [[10, 11], [10, 12], [11, 12]]) == 1
    assert least_tax_within_se([regressive, progressive], [[10, 12], [10, 12]]) == 0


def test_choice_rule_errors():
    with pytest.raises(ValueError, match=r"choice must be one of \['best', 'least_tax'\]"):
        choose("simplest", [NONE], [[1.0]])
    with pytest.raises(ValueError, match=r"candidates x seeds \(2 rows, one or more seeds\)"):
        least_tax_within_se([NONE, FLAT30], [[1.0, 2.0]])


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6), st.integers(1, 6), st.data())
def test_least_tax_is_the_least_taxing_of_those_within_one_se(k, n, data):
    """Against a brute force over the candidates, written from the rule's statement."""
    levels = st.sampled_from([0.0, 0.25, 0.5, 1.0])
    candidates = [tuple(data.draw(levels) for _ in range(3)) for _ in range(k)]
    scores = np.asarray(data.draw(st.lists(st.lists(
        st.integers(0, 40), min_size=n, max_size=n), min_size=k, max_size=k)), float)
    chosen = least_tax_within_se(candidates, scores)
    best = choose("best", candidates, scores)
    assert scores[best].mean() == scores.mean(axis=1).max()
    if n == 1:
        assert chosen == best
        return
    within, surely = [], []  # within one se; and not merely by float rounding
    for i in range(k):
        d = [scores[best][j] - scores[i][j] for j in range(n)]
        mean = sum(d) / n
        se = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1) / n)
        if mean <= se + 1e-9:
            within.append(i)
        if mean <= se - 1e-9 or not any(d):  # equal scores: d = 0 exactly
            surely.append(i)
    assert chosen in within and best in surely
    assert sum(candidates[chosen]) <= min(sum(candidates[i]) for i in surely)


def test_design_imports_only_numpy_and_the_standard_library():
    """The package's foundation is pure (issue 30 item 5): its __init__, the protocol,
    the bandits and halving import no JAX, Ray or torch, and nothing of sed_meltingpot
    outside design/, so they load and test without a trainer. (The drivers above them,
    two_timescale and search, use the trainer; __init__ serves search's names lazily.)"""
    import ast
    import pathlib
    import sys

    folder = pathlib.Path(__file__).resolve().parents[1] / "sed_meltingpot" / "design"
    allowed = set(sys.stdlib_module_names) | {"numpy", "sed_meltingpot"}
    for module in ("__init__.py", "protocol.py", "bandits.py", "halving.py"):
        path = folder / module
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
                if name.startswith("sed_meltingpot"):
                    assert name.startswith("sed_meltingpot.design"), f"{path.name}: {name}"
