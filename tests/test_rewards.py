"""Tests for sed_meltingpot.core.rewards: player types and the Eq. 8 reward."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sed_meltingpot.core.rewards import mix_rewards, sample_selfishness, validate_selfishness

SETTINGS = settings(max_examples=200, deadline=None)


def brute_force_eq8(taxed, sigma, visible, aggregate="sum"):
    """Paper Eq. 8 with an explicit double loop over players."""
    n = len(taxed)
    out = []
    for i in range(n):
        neighbours = [taxed[j] for j in range(n) if j != i and visible[i][j]]
        if aggregate == "sum":
            social = sum(neighbours)
        else:
            social = sum(neighbours) / len(neighbours) if neighbours else 0.0
        out.append(sigma[i] * taxed[i] + (1 - sigma[i]) * social)
    return out


@st.composite
def games(draw, max_players=8):
    n = draw(st.integers(1, max_players))
    taxed = draw(st.lists(st.floats(-50, 50), min_size=n, max_size=n))
    sigma = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    visible = draw(hnp.arrays(bool, (n, n)))
    return taxed, sigma, visible


# Three players: 0 sees 1; 1 sees 0 and 2; 2 sees 0 (diagonal set to show it is ignored).
TAXED = [1.0, 2.0, 4.0]
SIGMA = [0.5, 0.25, 1.0]
VISIBLE = [[1, 1, 0], [1, 1, 1], [1, 0, 1]]


def test_hand_example_sum():
    # r0 = 0.5*1 + 0.5*2          = 1.5
    # r1 = 0.25*2 + 0.75*(1 + 4)  = 0.5 + 3.75 = 4.25
    # r2 = 1.0*4 + 0.0*1          = 4.0
    np.testing.assert_allclose(mix_rewards(TAXED, SIGMA, VISIBLE), [1.5, 4.25, 4.0], atol=1e-12)


def test_hand_example_mean():
    # r1 = 0.25*2 + 0.75*(1 + 4)/2 = 0.5 + 1.875 = 2.375; others see one player each.
    got = mix_rewards(TAXED, SIGMA, VISIBLE, neighbour_aggregate="mean")
    np.testing.assert_allclose(got, [1.5, 2.375, 4.0], atol=1e-12)


def test_selfish_players_get_their_own_taxed_reward():
    taxed = np.array([3.0, -1.0, 7.5, 0.25])
    visible = np.ones((4, 4), dtype=bool)
    np.testing.assert_array_equal(mix_rewards(taxed, np.ones(4), visible), taxed)


def test_altruists_get_the_neighbour_sum():
    # sigma = 0: r_i = sum of the *other* visible players' rewards, never the own one.
    taxed = [3.0, -1.0, 7.5, 0.25]
    visible = np.ones((4, 4), dtype=bool)
    expected = [-1.0 + 7.5 + 0.25, 3.0 + 7.5 + 0.25, 3.0 - 1.0 + 0.25, 3.0 - 1.0 + 7.5]
    np.testing.assert_allclose(mix_rewards(taxed, np.zeros(4), visible), expected, atol=1e-12)


def test_neighbour_term_is_not_zero():
    # Eq. 8's neighbour term: a hard-coded zero (a known past defect) must fail this.
    got = mix_rewards([0.0, 10.0], [0.0, 0.0], [[0, 1], [0, 0]])
    np.testing.assert_array_equal(got, [10.0, 0.0])


def test_mean_with_nobody_visible_is_zero_social_term():
    got = mix_rewards([2.0, 4.0], [0.25, 0.5], np.zeros((2, 2)), neighbour_aggregate="mean")
    np.testing.assert_allclose(got, [0.5, 2.0], atol=1e-12)


@SETTINGS
@given(games(), st.sampled_from(["sum", "mean"]))
def test_matches_brute_force(game, aggregate):
    taxed, sigma, visible = game
    expected = brute_force_eq8(taxed, sigma, visible.tolist(), aggregate)
    got = mix_rewards(taxed, sigma, visible, neighbour_aggregate=aggregate)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)


@SETTINGS
@given(games())
def test_diagonal_is_ignored(game):
    taxed, sigma, visible = game
    with_diag, without_diag = visible.copy(), visible.copy()
    np.fill_diagonal(with_diag, True)
    np.fill_diagonal(without_diag, False)
    np.testing.assert_array_equal(
        mix_rewards(taxed, sigma, with_diag), mix_rewards(taxed, sigma, without_diag)
    )


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 5), st.data())
def test_batch_over_steps_matches_loop(n, steps, data):
    taxed = data.draw(hnp.arrays(float, (steps, n), elements=st.floats(-20, 20)))
    sigma = data.draw(hnp.arrays(float, (n,), elements=st.floats(0, 1)))
    visible = data.draw(hnp.arrays(bool, (steps, n, n)))
    got = mix_rewards(taxed, sigma, visible)
    for t in range(steps):
        expected = brute_force_eq8(taxed[t].tolist(), sigma.tolist(), visible[t].tolist())
        np.testing.assert_allclose(got[t], expected, rtol=1e-12, atol=1e-9)


def test_one_visibility_matrix_broadcasts_over_steps():
    taxed = np.array([[1.0, 2.0], [3.0, 5.0]])
    got = mix_rewards(taxed, [0.5, 0.5], [[0, 1], [0, 0]])
    # step 0: r0 = 0.5*1 + 0.5*2 = 1.5, r1 = 0.5*2 = 1; step 1: 0.5*3 + 0.5*5 = 4, 2.5
    np.testing.assert_allclose(got, [[1.5, 1.0], [4.0, 2.5]], atol=1e-12)


# --- types -----------------------------------------------------------------------------


def test_sample_selfishness_is_seeded_uniform():
    a = sample_selfishness(7, seed=3)
    assert a.shape == (7,)
    assert np.all((a >= 0) & (a <= 1))
    np.testing.assert_array_equal(a, sample_selfishness(7, seed=3))
    assert not np.array_equal(a, sample_selfishness(7, seed=4))
    np.testing.assert_array_equal(a, np.random.default_rng(3).uniform(0.0, 1.0, 7))


def test_sample_selfishness_is_roughly_uniform():
    s = sample_selfishness(20000, seed=0)
    assert abs(s.mean() - 0.5) < 0.01
    assert abs(np.mean(s < 0.25) - 0.25) < 0.01


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_sample_selfishness_rejects_bad_counts(bad):
    with pytest.raises((ValueError, TypeError), match="num_players must be a positive integer"):
        sample_selfishness(bad, seed=0)


@pytest.mark.parametrize(
    ("sigma", "kwargs", "match"),
    [
        ([0.2, 1.5], {}, r"selfishness\[1\]=1\.5 is outside \[0, 1\]"),
        ([-0.2, 0.5], {}, r"selfishness\[0\]=-0\.2 is outside \[0, 1\]"),
        ([0.2, float("nan")], {}, r"selfishness\[1\]=nan is outside \[0, 1\]"),
        ([0.2, 0.3], {"num_players": 3}, r"selfishness has length 2, expected 3"),
        ([[0.2, 0.3]], {}, r"selfishness must be a 1-D array"),
        ([], {}, r"selfishness must have at least one player"),
    ],
)
def test_validate_selfishness(sigma, kwargs, match):
    with pytest.raises(ValueError, match=match):
        validate_selfishness(sigma, **kwargs)


def test_validate_selfishness_accepts_bounds():
    np.testing.assert_array_equal(validate_selfishness([0, 1]), [0.0, 1.0])


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (([1.0, 2.0], [0.5, 1.5], np.eye(2)), {}, r"selfishness\[1\]=1\.5 is outside \[0, 1\]"),
        (([1.0, 2.0], [0.5], np.eye(2)), {}, r"selfishness has length 1, expected 2"),
        (([1.0, 2.0], [0.5, 0.5], np.eye(3)), {}, r"visible must have shape \(\.\.\., 2, 2\)"),
        (([1.0, 2.0], [0.5, 0.5], [[0, 2], [1, 0]]), {}, r"visible must hold booleans or 0/1"),
        (
            ([1.0, 2.0], [0.5, 0.5], np.eye(2)),
            {"neighbour_aggregate": "max"},
            r"neighbour_aggregate must be one of \('sum', 'mean'\), got 'max'",
        ),
        ((3.0, [0.5], np.eye(1)), {}, r"taxed must have a last axis of players"),
    ],
)
def test_mix_rewards_rejects_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        mix_rewards(*args, **kwargs)
