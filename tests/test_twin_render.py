"""The JAX twin's observations are bit-equal to the Lua substrate's (issue 9, item 2).

Every test runs the Lua substrate (`tests/lua_reference.py`, debug observations:
positions, orientations, live apples per cell, zapped), renders the same state
with `sed_meltingpot.twin.render` and compares, pixel for pixel, the players'
RGB, their 1-pixel-per-tile version (`observations.downsample(RGB, 1)`, computed
here from the Lua RGB), WORLD.RGB and its 1-pixel version. A mismatch reports
the frame, player, tile and channel.

The zap beam is not part of the Lua debug state: the tests read which tiles
it covers from WORLD.RGB (the tiles drawn entirely in the beam colour) and so
check how the beam is drawn in every rotated view, above what lies below.
Which tiles a zap covers is the dynamics' rule (tests/test_twin_env.py).
"""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from sed_meltingpot.game.observations import downsample
from sed_meltingpot.twin import render
from tests.lua_reference import LuaFrame, LuaReference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPRITE = 8


def beam_from_world(world_rgb: np.ndarray, beam_rgb: np.ndarray) -> np.ndarray:
    """bool[H, W]: tiles that WORLD.RGB draws entirely in the beam colour."""
    h, w = world_rgb.shape[0] // SPRITE, world_rgb.shape[1] // SPRITE
    blocks = world_rgb.reshape(h, SPRITE, w, SPRITE, 3)
    return (blocks == beam_rgb).all(axis=(1, 3, 4))


def _first_mismatch(name: str, got: np.ndarray, want: np.ndarray, per_player: bool,
                    px_per_tile: int) -> str:
    bad = np.argwhere(got != want)
    idx = tuple(bad[0])
    if per_player:
        player, y, x, ch = idx
        where = f"player {player}, view tile (row {y // px_per_tile}, col {x // px_per_tile})"
    else:
        y, x, ch = idx
        where = f"map tile (row {y // px_per_tile}, col {x // px_per_tile})"
    return (f"{name}: {len(bad)} values differ; first at {where}, pixel ({y}, {x}), "
            f"channel {ch}: twin {got[idx]} vs Lua {want[idx]}")


class Checker:
    """Renders Lua frames with the twin and compares all four observations."""

    def __init__(self, ascii_map: str, num_players: int):
        self.tables = render.build_tables(ascii_map, num_players)
        self.beam_rgb = render.load_assets()["beam"][:3]
        fns = (render.pixels_from_arrays, render.tiles_from_arrays,
               render.world_rgb_from_arrays, render.world_tiles_from_arrays)
        tables = self.tables
        self._render = jax.jit(lambda *a: tuple(f(tables, *a) for f in fns))
        self.frames = 0
        self.beam_frames = 0

    def check(self, frame: LuaFrame) -> None:
        beam = beam_from_world(frame.world_rgb, self.beam_rgb)
        got = [np.asarray(x) for x in self._render(
            frame.apples, frame.pos, frame.orient, frame.alive, beam)]
        want = [frame.rgb, np.stack([downsample(v, 1) for v in frame.rgb]),
                frame.world_rgb, downsample(frame.world_rgb, 1)]
        names = ("pixels", "tiles", "world_rgb", "world_tiles")
        for name, g, w, per_player, ppt in zip(
                names, got, want, (True, True, False, False), (SPRITE, 1, SPRITE, 1),
                strict=True):
            assert g.shape == w.shape and g.dtype == w.dtype, (name, g.shape, w.shape)
            if not np.array_equal(g, w):
                pytest.fail(f"step {frame.step}: " + _first_mismatch(name, g, w, per_player, ppt))
        self.frames += 1
        self.beam_frames += int(beam.any())


def _map(text: str) -> str:
    return "\n" + "\n".join(r.strip("|") for r in text.strip("\n").split("\n")) + "\n"


def _play(checker: Checker, lua: LuaReference, actions) -> list[LuaFrame]:
    frames = [lua.reset()]
    checker.check(frames[0])
    for row in actions:
        frames.append(lua.step(row))
        checker.check(frames[-1])
    return frames


def _random_actions(rng: np.random.Generator, steps: int, n: int, zap: float) -> np.ndarray:
    acts = rng.integers(0, 8, size=(steps, n))
    acts[rng.random((steps, n)) < zap] = 7
    return acts


# ---------------------------------------------------------------- random play

@pytest.mark.parametrize("seed", [0, 1])
def test_random_play_default_map(seed: int) -> None:
    """Two episodes of 150 random steps on the default map, zaps frequent."""
    rng = np.random.default_rng(seed)
    with LuaReference("apple_picking", seed=seed, episode_length=150) as lua:
        checker = Checker(lua.config.ascii_map, lua.num_players)
        frames = _play(checker, lua, _random_actions(rng, 150, lua.num_players, 0.2))
    assert checker.beam_frames > 10
    assert any(not f.alive.all() for f in frames), "no player was zapped"
    assert len({(o) for f in frames for o in f.orient}) == 4


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 6))
def test_random_play_long(seed: int) -> None:
    """Full 1000-step episodes, default and large maps, with regrowth on."""
    rng = np.random.default_rng(seed)
    name = "apple_picking" if seed % 2 == 0 else "apple_picking__large"
    with LuaReference(name, seed=seed) as lua:
        checker = Checker(lua.config.ascii_map, lua.num_players)
        _play(checker, lua, _random_actions(rng, 1000, lua.num_players, 0.05))
    assert checker.frames == 1001


def test_twin_state_renders_like_lua() -> None:
    """End to end: the twin steps from each Lua state; its render equals the next Lua frame.

    Here the beam comes from the twin's own state (TwinState.beam), not from the
    Lua picture. The engine resolves move conflicts and respawn points at random;
    frames where the twin's random choices differ from Lua's are skipped (counted).
    """
    from sed_meltingpot.twin import TwinEnv

    rng = np.random.default_rng(11)
    steps, zero = 100, (0.0,) * 4
    with LuaReference("apple_picking", seed=5, episode_length=steps,
                      regrowth_probabilities=zero) as lua:
        env = TwinEnv.create("apple_picking", num_players=lua.num_players,
                             episode_length=steps, regrowth_probabilities=zero)
        fns = (render.pixels, render.tiles, render.world_rgb, render.world_tiles)
        draw = jax.jit(lambda s: tuple(f(env, s) for f in fns))
        step = jax.jit(env.step)
        prev = lua.reset()
        compared = beams = 0
        for t, acts in enumerate(_random_actions(rng, steps, lua.num_players, 0.2)):
            frame = lua.step(acts)
            state, _ = step(env.state_from(**prev.twin_fields()), acts, jax.random.PRNGKey(t))
            same = (np.array_equal(state.pos, frame.pos)
                    and np.array_equal(state.alive, frame.alive)
                    and np.array_equal(state.orient, frame.orient)
                    and np.array_equal(state.apples, frame.apples))
            if same:
                got = [np.asarray(x) for x in draw(state)]
                want = [frame.rgb, np.stack([downsample(v, 1) for v in frame.rgb]),
                        frame.world_rgb, downsample(frame.world_rgb, 1)]
                for name, g, w, pp, ppt in zip(("pixels", "tiles", "world_rgb", "world_tiles"),
                                                got, want, (True, True, False, False),
                                                (SPRITE, 1, SPRITE, 1), strict=True):
                    if not np.array_equal(g, w):
                        pytest.fail(f"step {frame.step}: " + _first_mismatch(name, g, w, pp, ppt))
                compared += 1
                beams += int(np.asarray(state.beam).any())
            prev = frame
    assert compared >= steps // 2, f"only {compared} of {steps} frames matched the twin's state"
    assert beams >= 5


@pytest.mark.slow
def test_more_players_than_named_colours() -> None:
    """20 players on the large map: players 17-20 take colours from Melting Pot's palette."""
    rng = np.random.default_rng(20)
    with LuaReference("apple_picking__large", seed=20, num_players=20,
                      episode_length=200) as lua:
        checker = Checker(lua.config.ascii_map, lua.num_players)
        _play(checker, lua, _random_actions(rng, 200, lua.num_players, 0.1))


def test_batched_games_render_each_game() -> None:
    """vmap over games gives, for each game, what rendering that game alone gives."""
    from sed_meltingpot.twin import TwinEnv

    env = TwinEnv.create("apple_picking", num_players=3)
    states = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 4))
    for fn in (render.tiles, render.pixels, render.world_tiles, render.world_rgb):
        batched = np.asarray(jax.jit(jax.vmap(lambda s, fn=fn: fn(env, s)))(states))
        for g in range(4):
            one = jax.tree_util.tree_map(lambda x, g=g: x[g], states)
            np.testing.assert_array_equal(batched[g], np.asarray(fn(env, one)))


# ---------------------------------------------------------------- scripted states

# Actions (Melting Pot's order).
NOOP, FWD, BACK, LEFT, RIGHT, TURN_L, TURN_R, ZAP = range(8)


def test_every_orientation_of_viewer_and_other() -> None:
    """Two players side by side turn through all 16 heading pairs, seeing each other."""
    ascii_map = _map("""
|WWWWWWW|
|W A a W|
|W QQ  W|
|W  A  W|
|WWWWWWW|
""")
    with LuaReference("apple_picking", seed=0, num_players=2, ascii_map=ascii_map,
                      regrowth_probabilities=(0.0,) * 4) as lua:
        checker = Checker(ascii_map, 2)
        frames = [lua.reset()]
        checker.check(frames[0])
        for _ in range(4):
            for _ in range(4):
                frames.append(lua.step([TURN_R, NOOP]))
                checker.check(frames[-1])
            frames.append(lua.step([NOOP, TURN_R]))
            checker.check(frames[-1])
    pairs = {(int(f.orient[0]), int(f.orient[1])) for f in frames}
    assert len(pairs) == 16
    assert all(f.nearby[0, 1] for f in frames), "players must see each other"


def test_views_beyond_every_edge_and_corner() -> None:
    """A wall-less map: players at the corners and edges look out of the map."""
    ascii_map = _map("""
|P  A  P|
|  AAA  |
|P  A  P|
""")
    with LuaReference("apple_picking", seed=1, num_players=4, ascii_map=ascii_map,
                      regrowth_probabilities=(0.0,) * 4) as lua:
        checker = Checker(ascii_map, 4)
        # Each player turns a full circle at its corner, then walks along an edge.
        acts = [[TURN_R] * 4] * 4 + [[FWD, LEFT, RIGHT, BACK]] * 3 + [[TURN_L] * 4] * 4
        frames = _play(checker, lua, acts)
    corners = {(0, 0), (0, 6), (2, 0), (2, 6)}
    assert {tuple(p) for p in frames[0].pos} == corners


def test_zap_beams_walls_and_removed_players() -> None:
    """Beams in all directions, stopped by inner walls; zapped players vanish and respawn."""
    ascii_map = _map("""
|WWWWWWWWW|
|W  P W  W|
|W PAP  PW|
|WW P  W W|
|W A  P  W|
|WWWWWWWWW|
""")
    rng = np.random.default_rng(7)
    with LuaReference("apple_picking", seed=2, num_players=6, ascii_map=ascii_map,
                      regrowth_probabilities=(0.0, 0.5, 0.5, 0.5)) as lua:
        checker = Checker(ascii_map, 6)
        scripted = [[ZAP] * 6, [TURN_R] * 6, [ZAP] * 6, [TURN_R] * 6, [ZAP] * 6]
        frames = _play(checker, lua, scripted + list(_random_actions(rng, 60, 6, 0.4)))
    assert checker.beam_frames >= 3
    assert any(not f.alive.all() for f in frames)
    # A removed player sees nothing; it comes back later.
    gone = [i for f in frames for i in np.flatnonzero(~f.alive)]
    assert gone and all(f.alive.any() for f in frames)


def test_beam_stopped_by_walls() -> None:
    """Hand-worked beams next to walls, as Lua draws them and as the twin's step draws them.

    One player at (2, 3) under a wall. Facing north the centre line is blocked at
    once and each side line (side tile + 1 ahead) stops at the top wall; facing
    east the centre line stops at the east wall and the north side is blocked.
    """
    from sed_meltingpot.twin import TwinEnv

    ascii_map = _map("""
|WWWWWWW|
|W  W  W|
|W  P  W|
|W     W|
|WWWWWWW|
""")
    expected = {0: {(2, 2), (1, 2), (2, 4), (1, 4)},
                1: {(2, 4), (2, 5), (3, 3), (3, 4), (3, 5)}}
    env = TwinEnv.create("apple_picking", num_players=1, map=ascii_map)
    draw = jax.jit(lambda s: (render.pixels(env, s), render.world_rgb(env, s)))
    with LuaReference("apple_picking", seed=4, num_players=1, ascii_map=ascii_map) as lua:
        checker = Checker(ascii_map, 1)
        frame = lua.reset()
        checker.check(frame)
        seen = {}
        for heading in (0, 1):
            while int(frame.orient[0]) != heading:
                frame = lua.step([TURN_R])
                checker.check(frame)
            for _ in range(3):  # let the zapper cool down
                frame = lua.step([NOOP])
            prev = frame
            frame = lua.step([ZAP])
            checker.check(frame)
            beam = beam_from_world(frame.world_rgb, checker.beam_rgb)
            seen[heading] = {tuple(int(v) for v in rc) for rc in np.argwhere(beam)}
            state, _ = env.step(env.state_from(**prev.twin_fields()), np.array([ZAP]),
                                jax.random.PRNGKey(0))
            pix, world = draw(state)
            np.testing.assert_array_equal(np.asarray(world), frame.world_rgb)
            np.testing.assert_array_equal(np.asarray(pix), frame.rgb)
    assert seen == expected


def test_apples_eaten_and_regrown() -> None:
    """Apples disappear under a player that eats them and regrow (probability 1)."""
    ascii_map = _map("""
|WWWWWWW|
|WAAAAAW|
|WAAQAAW|
|WAAAAAW|
|WWWWWWW|
""")
    with LuaReference("apple_picking", seed=3, num_players=1, ascii_map=ascii_map,
                      regrowth_probabilities=(0.0, 1.0, 1.0, 1.0)) as lua:
        checker = Checker(ascii_map, 1)
        acts = [[a] for a in (FWD, RIGHT, BACK, BACK, LEFT, LEFT, TURN_L, FWD, NOOP, NOOP)]
        frames = _play(checker, lua, acts)
    counts = [f.num_apples for f in frames]
    assert min(counts) < max(counts), counts
    assert any(b > a for a, b in zip(counts, counts[1:], strict=False)), "nothing regrew"


# ---------------------------------------------------------------- tables and assets

def test_tiles_table_is_block_mean() -> None:
    """Each 1-pixel tile equals downsample() of the block it stands for."""
    tables = render.build_tables(render.data.ASCII_MAP, 3)
    blocks = tables.blocks.reshape(-1, SPRITE, SPRITE, 3)
    want = np.stack([downsample(b, 1)[0, 0] for b in blocks])
    np.testing.assert_array_equal(tables.means.reshape(-1, 3), want)


def test_bad_player_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="num_players=0"):
        render.build_tables(render.data.ASCII_MAP, 0)
    with pytest.raises(ValueError, match="unknown tile"):
        render.build_tables("\nWXW\n", 1)


def test_assets_are_current() -> None:
    """Regenerating the sprites from Melting Pot gives the committed arrays."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    try:
        import make_twin_assets
    finally:
        sys.path.pop(0)
    fresh = make_twin_assets.build_assets()
    committed = render.load_assets()
    assert sorted(fresh) == sorted(committed)
    for key, value in fresh.items():
        np.testing.assert_array_equal(committed[key], value, err_msg=key)
        assert committed[key].dtype == value.dtype, key


def test_render_imports_no_meltingpot() -> None:
    """render.py must run where only JAX is installed."""
    code = (
        "import sys\n"
        "for m in ('meltingpot', 'dmlab2d', 'tensorflow', 'ray'):\n"
        "    sys.modules[m] = None\n"
        "from sed_meltingpot.twin import render\n"
        "render.build_tables(render.data.ASCII_MAP, 7)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('meltingpot', 'dmlab2d', 'tensorflow', 'ray') and sys.modules[m] is not None]\n"
        "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_assets_ship_with_the_package(tmp_path) -> None:
    """setup.py's build copies the asset file into the installed package."""
    subprocess.run([sys.executable, "setup.py", "-q", "build_py", "-d", str(tmp_path)],
                   check=True, cwd=ROOT, timeout=120, capture_output=True)
    shipped = tmp_path / "sed_meltingpot" / "twin" / "assets" / os.path.basename(
        render.ASSET_PATH)
    assert shipped.read_bytes() == open(render.ASSET_PATH, "rb").read()
