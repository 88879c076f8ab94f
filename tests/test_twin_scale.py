"""Players at scale on the JAX twin (issue 32, item 1): generated maps and local queries.

* Generated maps (`twin/generated_map.py`): sizes worked out by hand, spawn points
  and apples for the players, the same map on every call, the paper's patch repeated
  and the paper's regrowth neighbourhoods (checked by brute force on the map text).
* The cell grid (`twin/cell_grid.py`) against a brute-force numpy reference written
  here: who sees whom on random positions and headings, Eq. 8 over the lists, the
  respawn order; and whole steps of the grid world against the pairwise one (the
  form the Lua replay tests check) on a crowded map and a generated one.
* A short SED twin episode with 64 players on a generated map: each step's rewards
  equal Eq. 8 computed directly from the positions.
* The one-line errors: a bad number of players for --map=generated, the Lua engine
  asked for it, and the dry run of scripts/train.py.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sed_meltingpot.substrates import apple_picking_data as data

from sed_meltingpot.core import rewards
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.twin import cell_grid, render
from sed_meltingpot.twin.env import TwinEnv, nearby
from sed_meltingpot.twin.generated_map import generated_map

# Commons Harvest's view window: 9 ahead, 1 behind, 5 to each side.
AHEAD, BEHIND, SIDE = 9, 1, 5


def brute_nearby(pos: np.ndarray, orient: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """bool[n, n]: j inside i's window, both live, j != i; one pair at a time."""
    n = len(pos)
    out = np.zeros((n, n), bool)
    for i in range(n):
        for j in range(n):
            if i == j or not (alive[i] and alive[j]):
                continue
            dr, dc = (int(v) for v in pos[j] - pos[i])
            # (ahead, to the right) when facing N, E, S, W.
            fwd, right = {0: (-dr, dc), 1: (dc, dr), 2: (dr, -dc), 3: (-dc, -dr)}[int(orient[i])]
            out[i, j] = -BEHIND <= fwd <= AHEAD and -SIDE <= right <= SIDE
    return out


def brute_mix(r_tax: np.ndarray, sigma: np.ndarray, visible: np.ndarray,
              aggregate: str = "sum") -> np.ndarray:
    """Eq. 8 one player at a time, in float64."""
    out = np.zeros(len(r_tax))
    for i in range(len(r_tax)):
        others = [r_tax[j] for j in range(len(r_tax)) if visible[i, j] and j != i]
        social = sum(others) if aggregate == "sum" else (
            sum(others) / len(others) if others else 0.0)
        out[i] = sigma[i] * r_tax[i] + (1 - sigma[i]) * social
    return out


def lists_to_matrix(index: np.ndarray) -> np.ndarray:
    n = index.shape[0]
    out = np.zeros((n, n + 1), bool)
    np.put_along_axis(out, index, True, axis=1)
    return out[:, :n]


def random_players(rng: np.random.Generator, n: int, height: int, width: int):
    """Random positions (live players on distinct cells, as the rules keep them; zapped
    ones anywhere), headings and liveness."""
    alive = rng.random(n) < 0.8
    cells = rng.choice(height * width, size=n, replace=False)
    anywhere = rng.integers(0, height * width, size=n)
    cells = np.where(alive, cells, anywhere)
    pos = np.stack([cells // width, cells % width], -1).astype(np.int32)
    return pos, rng.integers(0, 4, n).astype(np.int32), alive


# --------------------------------------------------------------- generated maps

# (players, columns x rows of patches, width, height), worked out by hand: ceil(n / 7)
# patches, ceil(sqrt) columns, rows to hold them; a patch is 22x16 inside one wall.
SIZES = [(7, 1, 1, 24, 18), (32, 3, 2, 68, 34), (128, 5, 4, 112, 66),
         (1024, 13, 12, 288, 194)]


@pytest.mark.parametrize("players,cols,rows,width,height", SIZES)
def test_generated_map_size_spawns_and_apples(players, cols, rows, width, height):
    text = generated_map(players)
    lines = data.map_rows(text)
    assert (len(lines[0]), len(lines)) == (width, height)
    assert {len(line) for line in lines} == {width}
    # One wall around the whole, the paper's patch in every slot.
    assert set(lines[0]) == set(lines[-1]) == {"W"}
    assert all(line[0] == line[-1] == "W" for line in lines)
    patch = [line[1:-1] for line in data.map_rows(data.ASCII_MAP)[1:-1]]
    for r in range(rows):
        for c in range(cols):
            block = [line[1 + 22 * c:1 + 22 * (c + 1)]
                     for line in lines[1 + 16 * r:1 + 16 * (r + 1)]]
            assert block == patch, (r, c)
    assert text.count("A") == 64 * cols * rows >= 64 * players / 7
    spawns = text.count("P") + min(2, text.count("Q"))
    assert spawns >= players
    assert generated_map(players) == text  # a pure function of the players
    env = TwinEnv.create(map="generated", num_players=players)
    assert (env.height, env.width, env.num_players) == (height, width, players)
    assert env.initial_apples.sum() == 64 * cols * rows


def test_generated_maps_extend_the_paper_maps():
    assert generated_map(7) == data.ASCII_MAP       # one patch: the paper's map
    assert generated_map(1) == data.ASCII_MAP
    assert generated_map(8) == data.ASCII_MAP_LARGE  # two side by side: the large map


def test_generated_map_keeps_the_regrowth_neighbourhoods():
    """Each apple's neighbours are the apples within radius 2 (found on the text)."""
    env = TwinEnv.create(map="generated", num_players=40)
    lines = data.map_rows(env.ascii_map)
    apples = [(r, c) for r, line in enumerate(lines) for c, ch in enumerate(line) if ch == "A"]
    rng = np.random.default_rng(0)
    for r, c in (apples[k] for k in rng.choice(len(apples), 60, replace=False)):
        a = env.cell_to_apple[r * env.width + c]
        got = {int(env.apple_cells[j]) for j in env.neighbours[a] if j < len(env.apple_cells)}
        want = {r2 * env.width + c2 for r2, c2 in apples
                if 0 < (r2 - r) ** 2 + (c2 - c) ** 2 <= 4}
        assert got == want


def test_reset_spawns_every_player_on_its_own_spawn_point():
    env = TwinEnv.create(map="generated", num_players=130)
    state = jax.jit(env.reset)(jax.random.PRNGKey(3))
    cells = np.asarray(state.pos[:, 0] * env.width + state.pos[:, 1])
    assert len(set(cells.tolist())) == 130
    flat = "".join(data.map_rows(env.ascii_map))
    assert {flat[c] for c in cells[:2]} == {"Q"} and {flat[c] for c in cells[2:]} == {"P"}


# -------------------------------------------------------------- the cell grid


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [6, 40])
def test_seen_lists_equal_the_direct_window(n, seed):
    height, width = 14, 23
    rng = np.random.default_rng(seed)
    pos, orient, alive = random_players(rng, n, height, width)
    want = brute_nearby(pos, orient, alive)
    seen = jax.jit(cell_grid.seen_lists, static_argnums=(3, 4))(pos, orient, alive, height,
                                                                 width)
    index = np.asarray(seen.index)
    assert index.shape == (n, 120)
    # Each seen player listed once.
    for row in index:
        listed = row[row < n]
        assert len(set(listed.tolist())) == len(listed)
    np.testing.assert_array_equal(lists_to_matrix(index), want)
    np.testing.assert_array_equal(np.asarray(nearby(pos, orient, alive)), want)
    if n == 40:
        assert want.sum() > 0  # the case tests something


@pytest.mark.parametrize("aggregate", ["sum", "mean"])
@pytest.mark.parametrize("seed", range(3))
def test_eq8_over_the_lists_equals_the_direct_sum(aggregate, seed):
    rng = np.random.default_rng(10 + seed)
    n, height, width = 30, 12, 16
    pos, orient, alive = random_players(rng, n, height, width)
    visible = brute_nearby(pos, orient, alive)
    r_tax = rng.normal(size=n) * 3
    sigma = rng.random(n)
    seen = cell_grid.seen_lists(pos, orient, alive, height, width)
    got = rewards.mix_rewards_core(jnp.asarray(r_tax, jnp.float32),
                                   jnp.asarray(sigma, jnp.float32), seen, aggregate, jnp)
    want = brute_mix(r_tax, sigma, visible, aggregate)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
    # numpy too, with a list that names the player itself (ignored, as the diagonal is).
    index = np.concatenate([np.asarray(seen.index), np.arange(n)[:, None]], axis=1)
    got_np = rewards.mix_rewards_core(r_tax, sigma, rewards.SeenLists(index), aggregate, np)
    np.testing.assert_allclose(got_np, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_rank_among_counts_the_due_players_before_each(seed):
    rng = np.random.default_rng(seed)
    n = 50
    due = rng.random(n) < 0.5
    prio = rng.integers(0, 12, n).astype(np.float32)  # many ties
    want = [sum(1 for j in range(n) if due[j] and prio[j] < prio[i]) for i in range(n)]
    np.testing.assert_array_equal(np.asarray(cell_grid.rank_among(due, prio)), want)


def test_auto_locality_keeps_the_paper_maps_pairwise():
    assert TwinEnv.create().locality == "pairwise"
    assert TwinEnv.create("apple_picking__large").locality == "pairwise"
    assert TwinEnv.create(map="generated", num_players=128).locality == "grid"
    assert TwinEnv.create(num_players=7, locality="grid").locality == "grid"
    with pytest.raises(ValueError, match=r"locality='near' must be one of"):
        TwinEnv.create(locality="near")


CROWDED = "\n".join(["", "W" * 12, *["W" + "P" * 10 + "W"] * 8, "W" * 12, ""])


@pytest.mark.parametrize("map_name,players,steps", [(CROWDED, 40, 60), ("generated", 64, 80)])
def test_grid_steps_equal_pairwise_steps(map_name, players, steps):
    """The whole world step with the grid's queries against the direct ones, same keys:
    moves (a crowded map: blocked moves and chains), zaps, respawns, NEARBY."""
    envs = [TwinEnv.create(map=map_name, num_players=players, episode_length=1000,
                           locality=loc) for loc in ("pairwise", "grid")]
    step = [jax.jit(env.step) for env in envs]
    key = jax.random.PRNGKey(7)
    states = [envs[0].reset(key)] * 2
    # Many moves and zaps: forward, sideways, turns and FIRE_ZAP.
    p = jnp.array([0.05, 0.25, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2])
    counts = {"blocked": 0, "hit": 0, "respawned": 0, "seen": 0}
    for _ in range(steps):
        key, k_act, k_step = jax.random.split(key, 3)
        actions = jax.random.choice(k_act, 8, (players,), p=p)
        (s0, o0), (s1, o1) = (fn(s, actions, k_step) for fn, s in zip(step, states, strict=True))
        for field in ("pos", "orient", "alive", "apples", "zap_timer", "wait", "beam",
                      "fired", "step"):
            np.testing.assert_array_equal(np.asarray(getattr(s0, field)),
                                          np.asarray(getattr(s1, field)), err_msg=field)
        for field in ("apples_eaten", "zapped", "ready_to_shoot", "num_apples", "done"):
            np.testing.assert_array_equal(np.asarray(getattr(o0, field)),
                                          np.asarray(getattr(o1, field)), err_msg=field)
        assert isinstance(o1.nearby, rewards.SeenLists)
        np.testing.assert_array_equal(lists_to_matrix(np.asarray(o1.nearby.index)),
                                      np.asarray(o0.nearby))
        before = states[0]
        moving = np.isin(np.asarray(actions), [1, 2, 3, 4]) & np.asarray(before.alive)
        counts["blocked"] += int((moving & np.all(np.asarray(s0.pos) == np.asarray(before.pos),
                                                  -1)).sum())
        counts["hit"] += int((np.asarray(before.alive) & ~np.asarray(s0.alive)).sum())
        counts["respawned"] += int((~np.asarray(before.alive) & np.asarray(s0.alive)).sum())
        counts["seen"] += int(np.asarray(o0.nearby).sum())
        states = [s0, s1]
    assert min(counts.values()) > 0, counts  # every query was exercised


# ------------------------------------------------------------- the SED twin


def test_sed_twin_on_a_generated_map_pays_eq8_of_the_direct_window():
    from sed_meltingpot.twin.sed import SEDTwin

    n = 64
    game = GameConfig(num_players=n, map="generated", episode_length=100, tax_period=50)
    twin = SEDTwin(game)
    assert twin.env.locality == "grid"
    sigma = np.random.default_rng(0).random(n).astype(np.float32)
    step, set_rates = jax.jit(twin.step), jax.jit(twin.set_rates)
    g, _ = jax.jit(twin.reset)(jax.random.PRNGKey(0), sigma)
    key = jax.random.PRNGKey(1)
    social = 0.0
    for t in range(60):
        if bool(twin.principal_due(g)):
            g, _ = set_rates(g, jnp.array([0.2, 0.5, 1.0]))
        key, k_act, k_step = jax.random.split(key, 3)
        actions = jax.random.randint(k_act, (n,), 0, 8)
        g, obs, got, _, _, info = step(g, actions, k_step)
        env = g.env
        visible = brute_nearby(np.asarray(env.pos), np.asarray(env.orient),
                               np.asarray(env.alive))
        r_tax = np.asarray(info["r_tax"], np.float64)
        want = brute_mix(r_tax, sigma.astype(np.float64), visible)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5,
                                   err_msg=f"step {t}")
        # The tax is budget balanced: r_tax sums to the apples eaten.
        assert np.isclose(r_tax.sum(), np.asarray(info["apples"]).sum(), atol=1e-4)
        social += float(np.abs(visible @ r_tax).sum())
        assert obs.player_image.shape == (n, 11, 11, 3)
    assert social > 0  # neighbours' rewards entered some step's mix


def test_avatar_sprites_past_the_stored_ones_repeat_the_palette():
    """The stored sprites repeat every 62 players from the 17th colour on (the
    substrate's palette); players past the 128 stored keep that period."""
    avatars = render.load_assets()["avatar"]
    for j in range(78, 128):
        np.testing.assert_array_equal(avatars[j], avatars[j - 62])
    index = render.avatar_sprite_index(300, 128)
    assert index[:128].tolist() == list(range(128))
    assert index[[128, 189, 190, 299]].tolist() == [66, 127, 66, 113]
    tables = render.build_tables(generated_map(300), 300)
    assert tables.blocks.shape[1] == 4 * (4 * 300 + 2) + 4


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("players", [0, 4097, -3])
def test_a_bad_number_of_players_for_a_generated_map_is_one_line(players):
    from sed_meltingpot.training.jax.ppo_config import check_map

    for call in (lambda: TwinEnv.create(map="generated", num_players=players),
                 lambda: check_map(dataclasses.replace(GameConfig(), num_players=players,
                                                       map="generated"))):
        with pytest.raises(ValueError) as err:
            call()
        message = str(err.value)
        assert message == (f"--num_players={players} is outside [1, 4096], the sizes "
                           "--map=generated is made for")


def test_the_lua_substrate_refuses_a_generated_map_in_one_line():
    pytest.importorskip("meltingpot")
    from sed_meltingpot.game import substrate

    with pytest.raises(ValueError) as err:
        substrate.get_config("apple_picking", map="generated")
    message = str(err.value)
    assert "\n" not in message
    assert "--map=generated" in message and "--engine=jax" in message
    assert "--engine=rllib" in message


def test_train_dry_run_names_the_bad_flag(tmp_path):
    from test_script_errors import _check, run_script

    out = str(tmp_path / "run")
    cases = [
        ([f"--output_dir={out}", "--engine=jax", "--map=generated", "--num_players=5000"],
         "usage", ["--num_players=5000 is outside [1, 4096]", "--map=generated"]),
        ([f"--output_dir={out}", "--engine=jax", "--map=tiled"], "usage",
         ["--map must be one of default, large, generated"]),
        ([f"--output_dir={out}", "--engine=jax", "--map=generated", "--num_players=32"],
         "ok", []),
    ]
    _check(run_script("train.py", [c[0] for c in cases], str(tmp_path)), cases)
