"""analysis/dilemma.py and logged.py: per-episode figures recovered from the trainers' smoothed logs
(checked against a brute-force deque of episodes, the trainer's window), and the collapse
and second-half summaries against hand-worked numbers."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from sed_meltingpot.analysis import dilemma, logged


def smoothed_log(episodes: np.ndarray, per_iteration: list[int], window: int,
                 players: int = 3) -> list[dict]:
    """Progress records as the trainer logs them: each iteration's new episodes (rows of
    per-player apples) enter a deque of `window`, and apples_p<i> are its means; an
    iteration without episodes carries the last figures (runlog.ProgressLog)."""
    recent: collections.deque = collections.deque(maxlen=window)
    records, start, last = [], 0, {}
    for i, c in enumerate(per_iteration):
        for row in episodes[start: start + c]:
            recent.append(row)
        start += c
        if c:
            means = np.mean(np.stack(recent), axis=0)
            last = {f"apples_p{p}": float(means[p]) for p in range(players)}
        records.append({"iteration": i + 1, "game_steps": 100 * (i + 1),
                        "episodes_this_iter": c, **last})
    return records


@pytest.mark.parametrize("c", [1, 2, 4, 5, 20])
def test_episode_values_undo_the_window(c):
    rng = np.random.default_rng(c)
    groups = 37
    episodes = rng.uniform(0, 50, size=(groups * c, 3))
    per_iteration = []
    for _ in range(groups):  # an episode-free iteration between each, as with 1 game
        per_iteration += [0, c]
    records = smoothed_log(episodes, per_iteration, window=20)
    steps, values = dilemma.episode_values(records, window=20)
    expected = episodes.mean(axis=1).reshape(groups, c).mean(axis=1)
    np.testing.assert_allclose(values, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(steps, [100 * (2 * g + 2) for g in range(groups)])


def test_the_smoothed_figure_is_not_the_episode_figure():
    """The recovery does something: past the window the logged mean differs."""
    rng = np.random.default_rng(0)
    episodes = rng.uniform(0, 50, size=(30, 3))
    records = smoothed_log(episodes, [1] * 30, window=20)
    logged = np.array([dilemma.apples_per_player(r) for r in records])
    _, values = dilemma.episode_values(records, window=20)
    assert np.abs(logged[20:] - values[20:]).max() > 1.0


@pytest.mark.parametrize("counts", [[3, 3, 3], [2, 4, 2]])
def test_unrecoverable_counts_are_refused(counts):
    episodes = np.ones((sum(counts), 3))
    records = smoothed_log(episodes, counts, window=20)
    with pytest.raises(ValueError, match="divides the window"):
        dilemma.episode_values(records, window=20)


def test_collapse_and_second_half_by_hand():
    values = np.array([1.0, 3.0, 5.0, 7.0, 6.0, 2.0, 2.0, 4.0])
    out = dilemma.collapse(values, smooth=2)
    # Moving means of 2: 2, 4, 6, 6.5, 4, 2, 3 -> peak 6.5 (points 3-4); the last
    # quarter (2 points) is 2 and 4 -> end 3.
    assert out["peak"] == pytest.approx(6.5)
    assert out["end"] == pytest.approx(3.0)
    assert out["fall"] == pytest.approx(3.5)
    assert out["peak_at"] == pytest.approx((3 + 1) / 8)
    steps = np.arange(1, 9) * 10.0  # half of 80 is 40: points at 50-80 are kept
    assert logged.second_half_mean(steps, values) == pytest.approx((6 + 2 + 2 + 4) / 4)
    # logged_points keeps only the iterations that ended episodes.
    records = [{"game_steps": 10, "episodes_this_iter": 1, "utilitarian": 3.0},
               {"game_steps": 20, "episodes_this_iter": 0, "utilitarian": 3.0},
               {"game_steps": 30, "episodes_this_iter": 2, "utilitarian": 5.0}]
    xs, ys = logged.logged_points(records, lambda r: r["utilitarian"])
    assert xs.tolist() == [10.0, 30.0] and ys.tolist() == [3.0, 5.0]
    with pytest.raises(ValueError, match="need at least"):
        dilemma.collapse(values[:3], smooth=2)
