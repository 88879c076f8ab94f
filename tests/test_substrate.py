"""Tests for the apple_picking substrate (paper Section 4, Table 1) from
sed_meltingpot.game.substrate.

Every check compares the Lua game against something computed here without it:
the map text, the view-window geometry, binomial bounds on regrowth, the
drop in live apples. Environments are small or short so the file runs in
well under two minutes on two cores.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from sed_meltingpot.game import substrate

NUM_ACTIONS = 8
FIRE = 7
# The default view window (paper Table 1): 9 tiles forward, 1 back, 5 to each side.
FORWARD, BACKWARD, SIDE = 9, 1, 5
# Two-sided 99.9% normal quantile for the regrowth-rate bounds.
Z_999 = 3.2905


def _obs(ts, key: str, player: int = 0) -> np.ndarray:
    return np.asarray(ts.observation[player][key])


def _num_apples(ts) -> int:
    value = float(_obs(ts, "WORLD.NUM_APPLES"))
    assert value == int(value)
    return int(value)


def _random_actions(num_players: int, steps: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, NUM_ACTIONS, size=(steps, num_players))


def _rollout(env, actions: np.ndarray) -> Iterator:
    """Yields the reset timestep and then one timestep per row of `actions`."""
    yield env.reset()
    for row in actions:
        yield env.step([int(a) for a in row])


# --- 1. structure ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_env():
    env = substrate.build("apple_picking", seed=7, episode_length=37)
    yield env
    env.close()


def test_default_map_has_64_apples_and_62_spawn_points():
    config = substrate.get_config("apple_picking")
    rows = config.ascii_map.strip("\n").split("\n")
    assert (len(rows[0]), len(rows)) == (24, 18)
    assert sum(row.count("A") for row in rows) == 64
    assert sum(row.count("P") + min(row.count("Q"), 2) for row in rows) == 62


def test_reset_structure(default_env):
    ts = default_env.reset()
    assert ts.first()
    assert len(ts.observation) == 7
    assert len(ts.reward) == 7
    ascii_map = substrate.get_config("apple_picking").ascii_map
    assert _num_apples(ts) == ascii_map.count("A") == 64
    for i, obs in enumerate(ts.observation):
        shapes = {
            "RGB": ((88, 88, 3), np.uint8),
            "READY_TO_SHOOT": ((), np.float64),
            "NEARBY": ((7,), np.float64),
            "APPLES_EATEN": ((), np.float64),
            "ZAPPED": ((), np.float64),
            "WORLD.RGB": ((144, 192, 3), np.uint8),
            "WORLD.NUM_APPLES": ((), np.float64),
        }
        for key, (shape, dtype) in shapes.items():
            value = np.asarray(obs[key])
            assert value.shape == shape, key
            assert value.dtype == dtype, key
        assert "POSITION" not in obs  # Only with debug_observations=True.
        assert obs["NEARBY"][i] == 0
        assert set(np.unique(obs["NEARBY"])) <= {0.0, 1.0}
        assert obs["APPLES_EATEN"] == 0 and obs["ZAPPED"] == 0
    specs = default_env.observation_spec()
    assert specs[0]["NEARBY"].shape == (7,)
    assert specs[0]["WORLD.RGB"].shape == (144, 192, 3)


def _episode_length(env, num_players: int, limit: int) -> int:
    env.reset()
    actions = _random_actions(num_players, limit, seed=0)
    for t, row in enumerate(actions, start=1):
        ts = env.step([int(a) for a in row])
        if ts.last():
            return t
        assert ts.mid()
    raise AssertionError(f"no last timestep within {limit} steps")


def test_episode_ends_at_configured_length(default_env):
    assert _episode_length(default_env, 7, limit=100) == 37
    # The next episode (after reset) is just as long.
    assert _episode_length(default_env, 7, limit=100) == 37
    env = substrate.build("apple_picking", seed=1, episode_length=5, num_players=2)
    try:
        assert _episode_length(env, 2, limit=20) == 5
    finally:
        env.close()


# --- 2. regrowth ----------------------------------------------------------------------

# Offsets inside the L2 disc of radius 2 (the cell itself excluded) ...
DISC_OFFSETS = frozenset(
    (dx, dy) for dx in range(-2, 3) for dy in range(-2, 3)
    if 0 < dx * dx + dy * dy <= 4)
# ... and decoys just outside it (sqrt 5 and sqrt 8), which must not count.
DECOYS = ((1, 2), (-2, -1), (2, 2), (-1, -2))
# Live-apple offsets per neighbour count k, using the disc's edge (distance 2).
CLUSTERS = {
    0: (),
    1: ((2, 0),),
    2: ((0, -2), (1, 1)),
    3: ((0, 1), (-1, -1), (-2, 0)),
    4: ((1, 0), (0, -1), (2, 0), (-1, 1)),
    5: ((1, 0), (0, 1), (-1, 0), (1, -1), (0, 2)),
}
BLOCK = 5  # Each cluster sits in its own 5x5 block; no cell is within 2 of another block's centre.


def cluster_map(offsets: Sequence[tuple[int, int]], blocks_x: int, blocks_y: int) -> str:
    """A map of isolated eaten apples ('a'), each with `offsets` live apples around it.

    The single player spawns in a walled-off pocket above the clusters, so it
    can never reach (or eat) an apple.
    """
    assert set(offsets) <= DISC_OFFSETS
    width = BLOCK * blocks_x
    grid = [[" "] * width for _ in range(BLOCK * blocks_y)]
    for by in range(blocks_y):
        for bx in range(blocks_x):
            cx, cy = BLOCK * bx + 2, BLOCK * by + 2
            grid[cy][cx] = "a"
            for dx, dy in (*offsets, *DECOYS):
                grid[cy + dy][cx + dx] = "A"
    walls = "W" * (width + 2)
    rows = [walls, "WP" + "W" * width, walls]
    rows += ["W" + "".join(row) + "W" for row in grid] + [walls]
    return "\n".join(rows)


def live_neighbours(ascii_map: str, radius: float = 2.0) -> list[int]:
    """For each 'a' cell, the number of 'A' cells within L2 distance `radius`."""
    rows = ascii_map.strip("\n").split("\n")
    cells = {(x, y): c for y, row in enumerate(rows) for x, c in enumerate(row)}
    counts = []
    for (x, y), c in cells.items():
        if c == "a":
            counts.append(sum(
                1 for (u, v), d in cells.items()
                if d == "A" and 0 < (u - x) ** 2 + (v - y) ** 2 <= radius ** 2))
    return counts


def measure_regrowth(
    ascii_map: str, probabilities: Sequence[float], *, seed: int, episodes: int, steps: int
) -> tuple[int, int]:
    """Returns (regrowth events, waiting-cell-steps) over `episodes` episodes.

    The only player stands still, so apples never get eaten and the number
    regrown by step t is NUM_APPLES(t) - NUM_APPLES(0).
    """
    num_waiting = ascii_map.count("a")
    env = substrate.build(
        "apple_picking", seed=seed, num_players=1, ascii_map=ascii_map,
        regrowth_probabilities=probabilities, episode_length=steps + 1)
    events = exposure = 0
    try:
        for _ in range(episodes):
            ts = env.reset()
            initial = _num_apples(ts)
            assert initial == ascii_map.count("A")
            regrown = 0
            for _ in range(steps):
                if regrown == num_waiting:
                    break
                ts = env.step([0])
                assert _obs(ts, "APPLES_EATEN") == 0
                now = _num_apples(ts) - initial
                assert regrown <= now <= num_waiting
                exposure += num_waiting - regrown
                events += now - regrown
                regrown = now
    finally:
        env.close()
    return events, exposure


def assert_rate(events: int, exposure: int, p: float) -> None:
    """`events` out of `exposure` Bernoulli(p) trials, within a 99.9% normal bound."""
    assert exposure > 0
    bound = Z_999 * math.sqrt(exposure * p * (1 - p)) + 1
    assert abs(events - p * exposure) <= bound, (
        f"p_hat={events / exposure:.4f} from {events}/{exposure}, expected p={p} "
        f"(+-{bound / exposure:.4f})")


def test_cluster_maps_have_the_intended_neighbour_counts():
    for k, offsets in CLUSTERS.items():
        assert live_neighbours(cluster_map(offsets, 3, 2)) == [k] * 6
    # The decoys would count with a radius of 3.
    assert set(live_neighbours(cluster_map((), 3, 2), radius=3.0)) != {0}


def test_no_regrowth_without_live_neighbours():
    """k = 0 (only decoys at distance sqrt 5 or more) never regrows, even with p=1 above 0."""
    events, exposure = measure_regrowth(
        cluster_map(CLUSTERS[0], 6, 4), (0.0, 1.0, 1.0, 1.0), seed=3, episodes=1, steps=150)
    assert events == 0
    assert exposure == 24 * 150


def test_regrowth_is_immediate_with_probability_one():
    """Regrowth is checked from the first step on, with the count at distance exactly 2."""
    ascii_map = cluster_map(CLUSTERS[1], 4, 3)
    env = substrate.build(
        "apple_picking", seed=0, num_players=1, ascii_map=ascii_map,
        regrowth_probabilities=(0.0, 1.0), episode_length=10)
    try:
        ts = env.reset()
        assert _num_apples(ts) == ascii_map.count("A")
        ts = env.step([0])
        assert _num_apples(ts) == ascii_map.count("A") + ascii_map.count("a")
    finally:
        env.close()


def test_regrowth_raises_the_counts_of_waiting_neighbours():
    """A chain of eaten apples 2 apart, one live apple at its head, p = 1 from k = 1 on.

    Each eaten apple starts with no live neighbour and can only regrow once
    the previous one has, so all of them regrowing means that regrowth raises
    the live count of apples that were eaten from the start.
    """
    ascii_map = "\n".join([
        "WWWWWWWWWWW",
        "WPWWWWWWWWW",
        "WA a a a aW",
        "WWWWWWWWWWW",
    ])
    assert live_neighbours(ascii_map) == [1, 0, 0, 0]
    env = substrate.build(
        "apple_picking", seed=0, num_players=1, ascii_map=ascii_map,
        regrowth_probabilities=(0.0, 1.0), episode_length=20)
    try:
        ts = env.reset()
        assert _num_apples(ts) == 1
        counts = [_num_apples(env.step([0])) for _ in range(6)]
    finally:
        env.close()
    assert counts[0] >= 2  # The head regrows on the first step.
    assert counts[-1] == 5  # And the rest follow.
    assert counts == sorted(counts)


def test_eating_lowers_the_counts_of_waiting_neighbours():
    """With p = (0, 1, 0), an eaten apple with 2 live neighbours regrows once one is eaten.

    The player, in a corridor, eats the apple east of it (it tries each move
    once since its initial orientation is random) and then stands still.
    """
    ascii_map = "\n".join([
        "WWWWW",
        "WPAWW",
        "WWWaW",
        "WWWAW",
        "WWWWW",
    ])
    assert live_neighbours(ascii_map) == [2]
    env = substrate.build(
        "apple_picking", seed=0, num_players=1, ascii_map=ascii_map,
        regrowth_probabilities=(0.0, 1.0, 0.0), episode_length=20)
    try:
        ts = env.reset()
        assert _num_apples(ts) == 2
        for move in (1, 2, 3, 4):  # forward, backward, left, right.
            ts = env.step([move])
            if _obs(ts, "APPLES_EATEN") == 1:
                break
            assert _num_apples(ts) == 2  # k = 2: nothing regrows yet.
        assert _obs(ts, "APPLES_EATEN") == 1
        assert _num_apples(ts) == 1
        steps = [env.step([0]) for _ in range(4)]
    finally:
        env.close()
    # The waiting apple now has k = 1 and regrows at once (without the
    # decrement it would keep k = 2 and p = 0). Then the eaten one, k = 1 from
    # it, regrows too, under the player; as in Commons Harvest, an apple that
    # regrows under an avatar is eaten at once, so the standing player eats
    # one apple per step from then on.
    assert [_num_apples(ts) for ts in steps] == [2, 2, 2, 2]
    eaten = [float(_obs(ts, "APPLES_EATEN")) for ts in steps]
    assert eaten[1:] == [1.0, 1.0, 1.0]
    assert [float(ts.reward[0]) for ts in steps] == eaten


@pytest.mark.parametrize(("k", "p"), [(1, 0.05), (2, 0.1), (3, 0.2), (5, 0.2)])
def test_regrowth_rate_by_neighbour_count(k, p):
    """Per-step regrowth probability is probabilities[min(k, len - 1)]."""
    events, exposure = measure_regrowth(
        cluster_map(CLUSTERS[k], 6, 5), (0.0, 0.05, 0.1, 0.2), seed=11 + k, episodes=3,
        steps=250)
    assert_rate(events, exposure, p)


def test_default_regrowth_probabilities_follow_the_spec():
    assert tuple(substrate.get_config("apple_picking").regrowth_probabilities) == (
        0.0, 0.0025, 0.005, 0.025)
    assert substrate.get_config("apple_picking").regrowth_radius == 2.0
    # k >= 3 live neighbours: 0.025 per step (k = 3 and k = 4 clusters together).
    events3, exposure3 = measure_regrowth(
        cluster_map(CLUSTERS[3], 6, 5), substrate.get_config("apple_picking")
        .regrowth_probabilities, seed=5, episodes=2, steps=300)
    events4, exposure4 = measure_regrowth(
        cluster_map(CLUSTERS[4], 6, 5), (0.0, 0.0025, 0.005, 0.025), seed=6, episodes=2,
        steps=300)
    assert_rate(events3 + events4, exposure3 + exposure4, 0.025)


# --- 3. NEARBY against the view-window geometry ----------------------------------------


def in_view(dx: int, dy: int, orientation: int) -> bool:
    """Whether world offset (dx, dy) (x right, y down) lies in a window facing `orientation`."""
    forward, right = {
        0: (-dy, dx),   # N
        1: (dx, dy),    # E
        2: (dy, -dx),   # S
        3: (-dx, -dy),  # W
    }[orientation]
    return -BACKWARD <= forward <= FORWARD and -SIDE <= right <= SIDE


def test_in_view_geometry():
    # Facing north: up to 9 rows above, 1 below, 5 columns either side.
    assert in_view(0, -9, 0) and not in_view(0, -10, 0)
    assert in_view(0, 1, 0) and not in_view(0, 2, 0)
    assert in_view(5, 0, 0) and in_view(-5, 0, 0) and not in_view(6, 0, 0)
    # Facing east, "forward" is +x and "right" is +y.
    assert in_view(9, 5, 1) and not in_view(-2, 0, 1) and not in_view(0, 6, 1)
    assert in_view(-1, -5, 1)
    # South and west mirror north and east.
    assert in_view(0, 9, 2) and not in_view(0, -2, 2)
    assert in_view(-9, 0, 3) and not in_view(2, 0, 3)


@pytest.fixture(scope="module")
def debug_rollout():
    """A 300-step random rollout with POSITION and ORIENTATION, many zaps included."""
    env = substrate.build("apple_picking", seed=5, episode_length=400, debug_observations=True)
    try:
        steps = [
            [{key: np.asarray(value).copy() for key, value in obs.items()}
             for obs in ts.observation]
            for ts in _rollout(env, _random_actions(7, 300, seed=1))
        ]
    finally:
        env.close()
    return steps


def test_debug_observations(debug_rollout):
    obs = debug_rollout[0][0]
    assert obs["POSITION"].shape == (2,) and obs["POSITION"].dtype == np.int32
    assert obs["ORIENTATION"].shape == () and obs["ORIENTATION"].dtype == np.int32
    rows = substrate.get_config("apple_picking").ascii_map.strip("\n").split("\n")
    for i, obs in enumerate(debug_rollout[0]):
        x, y = obs["POSITION"]
        # Players 0 and 1 start on the inside spawn points, the others on the outer ones.
        assert rows[y][x] == ("Q" if i < 2 else "P")
        assert 0 <= obs["ORIENTATION"] <= 3


def _check_nearby(rollout) -> dict[str, int]:
    """Asserts NEARBY against the window geometry at every step; counts the cases seen.

    NEARBY[i][j] == 1 iff j is alive and inside alive i's window; zapped
    players see no one. A zapped avatar's POSITION is not meaningful: its
    off-grid wait piece still follows the move actions. So zapped players are
    left out as targets, whatever their POSITION says.
    """
    counts = {"nearby": 0, "far": 0, "zapped": 0}
    counts.update({f"nearby facing {o}": 0 for o in "NESW"})
    for t, observations in enumerate(rollout):
        alive = [obs["ZAPPED"] == 0 for obs in observations]
        for i, obs in enumerate(observations):
            expected = np.zeros(len(observations))
            if alive[i]:
                xi, yi = (int(v) for v in obs["POSITION"])
                orientation = int(obs["ORIENTATION"])
                for j, other in enumerate(observations):
                    if j != i and alive[j]:
                        xj, yj = (int(v) for v in other["POSITION"])
                        expected[j] = in_view(xj - xi, yj - yi, orientation)
                        counts["nearby" if expected[j] else "far"] += 1
                        if expected[j]:
                            counts[f"nearby facing {'NESW'[orientation]}"] += 1
            else:
                counts["zapped"] += 1
            np.testing.assert_array_equal(obs["NEARBY"], expected, err_msg=f"step {t} player {i}")
    return counts


def test_nearby_matches_view_geometry(debug_rollout):
    counts = _check_nearby(debug_rollout)
    # The rollout exercises every case, each facing included.
    assert min(counts.values()) >= 20, counts


def test_nearby_matches_view_geometry_with_16_players_over_two_episodes():
    """The scene computes NEARBY for all players at once, kept within a step.

    16 players on the large map check the row of every player index, and two
    episodes the first observation after a reset.
    """
    env = substrate.build("apple_picking__large", seed=11, episode_length=120,
                          debug_observations=True)
    rollout = []
    try:
        for episode in range(2):
            for ts in _rollout(env, _random_actions(16, 120, seed=20 + episode)):
                rollout.append([{key: np.asarray(value).copy() for key, value in obs.items()}
                                for obs in ts.observation])
            assert ts.last()
    finally:
        env.close()
    counts = _check_nearby(rollout)
    assert min(counts.values()) >= 20, counts


# --- 4. reward and APPLES_EATEN -------------------------------------------------------


def _eat_rollout(probabilities, seed: int, apple_reward: float = 1.0):
    env = substrate.build(
        "apple_picking", seed=seed, episode_length=400, regrowth_probabilities=probabilities,
        apple_reward=apple_reward)
    try:
        yield from _rollout(env, _random_actions(7, 300, seed=seed))
    finally:
        env.close()


def test_reward_is_apples_eaten_and_apples_are_conserved_without_regrowth():
    previous = None
    total_eaten = 0
    for ts in _eat_rollout((0.0, 0.0, 0.0, 0.0), seed=2, apple_reward=2.5):
        eaten = [float(obs["APPLES_EATEN"]) for obs in ts.observation]
        assert all(e == int(e) >= 0 for e in eaten)
        np.testing.assert_array_equal(np.asarray(ts.reward), 2.5 * np.asarray(eaten))
        if previous is None:
            assert sum(eaten) == 0
        else:
            assert previous - _num_apples(ts) == sum(eaten)
        total_eaten += sum(eaten)
        previous = _num_apples(ts)
    assert total_eaten >= 5  # The test is not vacuous.
    assert previous == 64 - total_eaten


def test_apples_eaten_with_regrowth():
    previous = None
    total_eaten = total_regrown = 0
    for ts in _eat_rollout((0.0, 0.2, 0.2, 0.2), seed=4):
        eaten = sum(float(obs["APPLES_EATEN"]) for obs in ts.observation)
        np.testing.assert_array_equal(
            np.asarray(ts.reward), [obs["APPLES_EATEN"] for obs in ts.observation])
        if previous is not None:
            regrown = _num_apples(ts) - previous + eaten
            assert regrown >= 0
            total_regrown += regrown
        total_eaten += eaten
        previous = _num_apples(ts)
    assert total_eaten >= 5 and total_regrown >= 1


# --- 5. determinism -------------------------------------------------------------------


def _trace(seed: int, actions: np.ndarray) -> list:
    env = substrate.build("apple_picking", seed=seed, episode_length=200)
    try:
        return [
            ([{k: np.asarray(v).copy() for k, v in obs.items()} for obs in ts.observation],
             np.asarray(ts.reward).copy())
            for ts in _rollout(env, actions)
        ]
    finally:
        env.close()


def test_same_seed_same_episode():
    actions = _random_actions(7, 100, seed=9)
    first, second = _trace(3, actions), _trace(3, actions)
    assert len(first) == len(second) == 101
    for (obs_a, rew_a), (obs_b, rew_b) in zip(first, second, strict=True):
        np.testing.assert_array_equal(rew_a, rew_b)
        for a, b in zip(obs_a, obs_b, strict=True):
            assert a.keys() == b.keys()
            for key in a:
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_different_seeds_differ():
    worlds = []
    for seed in (0, 1, 2):
        env = substrate.build("apple_picking", seed=seed, episode_length=10)
        try:
            worlds.append(np.asarray(env.reset().observation[0]["WORLD.RGB"]).copy())
        finally:
            env.close()
    assert any(not np.array_equal(worlds[0], w) for w in worlds[1:])


# --- 6. bad input ---------------------------------------------------------------------

GOOD_MAP = "WWWW\nWPAW\nWWWW"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"num_players": 63}, r"num_players=63 is outside \[1, 62\]"),
        ({"num_players": 0}, r"num_players=0 is outside"),
        ({"ascii_map": "WWWW\nWPAW\nWWW"}, r"equal length"),
        ({"ascii_map": "WWWW\nWPXW\nWWWW"}, r"unknown tile characters \['X'\]"),
        ({"ascii_map": "WWWW\nW AW\nWWWW"}, r"no spawn points"),
        ({"ascii_map": GOOD_MAP, "num_players": 2}, r"outside \[1, 1\]"),
        ({"regrowth_probabilities": (0.0, -0.1, 0.1)}, r"regrowth_probabilities\[1\]=-0.1"),
        ({"regrowth_probabilities": (0.0, 0.1, 1.5)}, r"regrowth_probabilities\[2\]=1.5"),
        ({"episode_length": 0}, r"episode_length=0"),
        ({"episode_length": -5}, r"episode_length=-5"),
        ({"map": "huge"}, r"map='huge'"),
        ({"episode_lenght": 10}, r"Unknown override 'episode_lenght'"),
    ],
)
def test_bad_config_raises(overrides, match):
    with pytest.raises(ValueError, match=match):
        substrate.get_config("apple_picking", **overrides)
    with pytest.raises(ValueError, match=match):
        substrate.build("apple_picking", **overrides)


def test_unknown_substrate_raises():
    with pytest.raises(ValueError, match=r"Unknown substrate 'commons_harvest'"):
        substrate.build("commons_harvest")


def test_roles_must_match_num_players():
    with pytest.raises(ValueError, match=r"num_players=3 disagrees with len\(roles\)=2"):
        substrate.build("apple_picking", roles=("default",) * 2, num_players=3)


# --- 7. other maps and player counts --------------------------------------------------


def test_large_map():
    env = substrate.build("apple_picking__large", seed=0, episode_length=3)
    try:
        ts = env.reset()
        assert len(ts.observation) == 16
        config = substrate.get_config("apple_picking__large")
        assert config.ascii_map.count("A") == _num_apples(ts) == 128
        rows = config.ascii_map.strip("\n").split("\n")
        assert _obs(ts, "WORLD.RGB").shape == (8 * len(rows), 8 * len(rows[0]), 3)
        assert _obs(ts, "NEARBY", 15).shape == (16,)
        for _ in range(3):
            ts = env.step([FIRE] * 16)
        assert ts.last()
    finally:
        env.close()


def test_full_default_map():
    """All 62 spawn points in use: more players than Commons Harvest's 16 avatar colours."""
    env = substrate.build("apple_picking", seed=0, num_players=62, episode_length=5)
    try:
        ts = env.reset()
        assert len(ts.observation) == 62
        assert _obs(ts, "NEARBY", 61).shape == (62,)
        ts = env.step([FIRE] * 62)
        assert len(ts.reward) == 62
    finally:
        env.close()


def test_map_without_outer_spawn_points():
    """Two players on the two `Q` tiles only: zapped players respawn there."""
    env = substrate.build(
        "apple_picking", seed=0, num_players=2, ascii_map="WWWW\nWQQW\nWWWW",
        debug_observations=True, episode_length=60)
    try:
        ts = env.reset()
        respawns = 0
        for t in range(50):
            before = [obs["ZAPPED"] for obs in ts.observation]
            ts = env.step([(5, FIRE)[t % 2]] * 2)  # Turn and fire until someone is hit.
            respawns += sum(b == 1 and obs["ZAPPED"] == 0
                            for b, obs in zip(before, ts.observation, strict=True))
        assert respawns > 0
        # Whoever was zapped came back onto one of the two tiles.
        positions = {tuple(int(v) for v in obs["POSITION"]) for obs in ts.observation
                     if obs["ZAPPED"] == 0}
        assert positions <= {(1, 1), (2, 1)}
    finally:
        env.close()


def test_map_without_inside_spawn_points():
    env = substrate.build(
        "apple_picking", seed=0, num_players=3, ascii_map="WWWWW\nWPPPW\nWAAAW\nWWWWW",
        episode_length=5)
    try:
        ts = env.reset()
        assert len(ts.observation) == 3 and _num_apples(ts) == 3
    finally:
        env.close()
