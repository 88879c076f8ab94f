"""Observations of the JAX twin, bit-equal to the Lua substrate's (issue 9, item 1).

What DMLab2D draws for apple_picking, found by reading Melting Pot's prefabs
(`commons_harvest__open`, `avatar_library.lua` Zapper, `base_simulation.lua`)
and checked pixel for pixel against the engine (`tests/test_twin_render.py`):

* Layers, bottom to top (base_simulation's `renderOrder`, plus `beamZap`
  appended by the Zapper): `logic` (eaten apple: fully transparent),
  `alternateLogic` (spawn points: no sprite), `background` (floor or grass),
  `lowerPhysical` (apple), `upperPhysical` (wall or avatar), `beamZap`. Every
  colour is fully opaque or fully transparent, so composing a layer replaces
  the pixels where its sprite is opaque (no blending arithmetic).
* A player's RGB is 11x11 tiles: 9 ahead, itself, 1 behind, 5 to each side,
  rotated so that it faces up. Floor, grass and wall sprites turn with the
  view (`noRotate = False`: each block is the sprite rotated by the viewer's
  orientation, counter-clockwise); the apple (`noRotate = True`) stays upright.
* Avatars have one sprite per heading (CUTE_AVATAR N/E/S/W, `noRotate`): a
  view shows the sprite of the heading relative to the viewer,
  (orient_other - orient_viewer) mod 4; WORLD.RGB shows the absolute heading.
* A player sees itself as Commons Harvest's `Self` sprite (TARGET_SPRITE_SELF,
  the blue avatar facing up in its own view); WORLD.RGB shows its own colour.
* The zap beam is one opaque colour (`beamColor`, default (252, 252, 106)) over
  whole tiles on the frame of the zap, above everything else.
* Tiles of the view beyond the map edge are `OutOfBounds`: black (0, 0, 0).
* A player out of play after a zap sees all zeros.

`tiles` (1 pixel per tile) is the floor of each 8x8 block's mean, as
`rllib_env.downsample(RGB, 1)` computes; it gathers from a table of each tile
content's mean (the same table `pixels` gathers 8x8 blocks from), so it never
draws pixels. A tile content is coded as an integer (see `RenderTables`).

The functions take a single game; `jax.vmap` them over games. The sprites come
from `assets/apple_picking_sprites.npz` (written by `scripts/make_twin_assets.py`
from Melting Pot; this module does not import Melting Pot).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sed_meltingpot.substrates import apple_picking_data as data

ASSET_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets",
                          "apple_picking_sprites.npz")
SPRITE = data.SPRITE_SIZE
VIEW_H = data.VIEW_FORWARD + data.VIEW_BACKWARD + 1
VIEW_W = data.VIEW_LEFT + data.VIEW_RIGHT + 1
# Per orientation (N, E, S, W): the (row, col) step of "forward" and of "right".
_FORWARD = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)], np.int32)
_RIGHT = np.array([(0, 1), (1, 0), (0, -1), (-1, 0)], np.int32)


@functools.lru_cache(maxsize=1)
def load_assets() -> dict[str, np.ndarray]:
    """The sprites extracted from Melting Pot (RGBA uint8)."""
    with np.load(ASSET_PATH) as f:
        return {k: f[k] for k in f.files}


def view_offsets() -> np.ndarray:
    """int32[4, 11, 11, 2]: world (row, col) offset of each view tile per viewer orientation.

    View row 0 is farthest ahead; the viewer stands at row VIEW_FORWARD, col VIEW_LEFT.
    """
    vr = np.arange(VIEW_H)[:, None, None]
    vc = np.arange(VIEW_W)[None, :, None]
    ahead = data.VIEW_FORWARD - vr
    right = vc - data.VIEW_LEFT
    return np.stack([ahead * _FORWARD[o] + right * _RIGHT[o] for o in range(4)]).astype(np.int32)


def _over(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Draws RGBA `src` (alpha 0 or 255) over RGB `dst`."""
    return np.where(src[..., 3:4] == 255, src[..., :3], dst)


@dataclasses.dataclass(frozen=True, eq=False)
class RenderTables:
    """Static drawing data of one map and player count (numpy; built once).

    A tile's content code: `(ground * 2 + apple) * U + upper` with ground 0
    floor / 1 grass, apple 0/1, upper 0 nothing, `1 + 4 j + h` avatar j shown
    with heading h, `4 n + 1` the viewer itself (U = 4 n + 2); then the
    opaque codes WALL = 4 U, BEAM = 4 U + 1, OOB = 4 U + 2 (beyond the map).
    `blocks[o, code]` is the tile's 8x8 RGB in a view of orientation o (0 for
    WORLD.RGB), `means[o, code]` its floor mean (the 1-pixel tile).
    """

    num_players: int
    height: int
    width: int
    ground: np.ndarray   # int32[H, W]: ground*2*U, or WALL on wall tiles
    wall: np.ndarray     # bool[H, W]
    blocks: np.ndarray   # uint8[4, K, 8, 8, 3]
    means: np.ndarray    # uint8[4, K, 3]
    offsets: np.ndarray  # int32[4, 11, 11, 2]

    @property
    def upper_count(self) -> int:
        return 4 * self.num_players + 2

    @property
    def wall_code(self) -> int:
        return 4 * self.upper_count

    @property
    def beam_code(self) -> int:
        return 4 * self.upper_count + 1

    @property
    def oob_code(self) -> int:
        return 4 * self.upper_count + 2

    @property
    def self_code(self) -> int:
        return 4 * self.num_players + 1


def build_tables(ascii_map: str, num_players: int) -> RenderTables:
    """Composes every tile content's block once (numpy), for the map and player count."""
    assets = load_assets()
    if not 1 <= num_players <= assets["avatar"].shape[0]:
        raise ValueError(
            f"num_players={num_players} is outside [1, {assets['avatar'].shape[0]}] "
            "(sprites are stored for that many players; regenerate the assets for more)")
    rows = data.map_rows(ascii_map)
    height, width = len(rows), len(rows[0])
    if any(len(r) != width for r in rows):
        raise ValueError("ascii_map is malformed: rows must have equal length")
    unknown = set("".join(rows)) - set(data.MAP_CHARS)
    if unknown:
        raise ValueError(f"ascii_map has unknown tile characters {sorted(unknown)}; "
                         f"allowed: {list(data.MAP_CHARS)}")
    n = num_players
    u = 4 * n + 2
    num_codes = 4 * u + 3
    grid = np.array([list(r) for r in rows])
    wall = grid == data.WALL
    grass = np.isin(grid, [data.APPLE, data.EATEN_APPLE])
    ground = np.where(wall, 4 * u, grass.astype(np.int32) * 2 * u).astype(np.int32)

    def turned(name: str, o: int) -> np.ndarray:
        sprite = assets[name]
        return sprite if bool(assets[f"{name}_no_rotate"]) else np.rot90(sprite, o)

    blocks = np.zeros((4, num_codes, SPRITE, SPRITE, 3), np.uint8)
    for o in range(4):
        for g, ground_name in enumerate(("floor", "grass")):
            for apple in (0, 1):
                base = _over(np.zeros((SPRITE, SPRITE, 3), np.uint8), turned(ground_name, o))
                if apple:
                    base = _over(base, turned("apple", o))
                code0 = (g * 2 + apple) * u
                blocks[o, code0] = base
                for j in range(n):
                    for h in range(4):
                        blocks[o, code0 + 1 + 4 * j + h] = _over(base, assets["avatar"][j, h])
                blocks[o, code0 + 4 * n + 1] = _over(base, assets["self"][0])
        blocks[o, 4 * u] = _over(np.zeros((SPRITE, SPRITE, 3), np.uint8), turned("wall", o))
        blocks[o, 4 * u + 1] = assets["beam"][:3]
        blocks[o, 4 * u + 2] = assets["out_of_bounds"][:3]
    # Floor of the mean over the 8x8 block, as rllib_env.downsample (exact: /64).
    means = (blocks.astype(np.int32).sum(axis=(2, 3)) // (SPRITE * SPRITE)).astype(np.uint8)
    return RenderTables(num_players=n, height=height, width=width, ground=ground, wall=wall,
                        blocks=blocks, means=means, offsets=view_offsets())


@functools.lru_cache(maxsize=16)
def tables_for(ascii_map: str, num_players: int) -> RenderTables:
    """Cached `build_tables` (one per map and player count)."""
    return build_tables(ascii_map, num_players)


# ---------------------------------------------------------------- tile codes

def world_codes(tables: RenderTables, apples: jax.Array, pos: jax.Array, orient: jax.Array,
                alive: jax.Array, beam: jax.Array) -> jax.Array:
    """int32[H, W]: each map tile's content code as WORLD.RGB shows it (absolute headings)."""
    n = tables.num_players
    u = tables.upper_count
    ground = jnp.asarray(tables.ground)
    wall = jnp.asarray(tables.wall)
    codes = ground + apples.astype(jnp.int32) * u
    upper = 1 + 4 * jnp.arange(n, dtype=jnp.int32) + orient.astype(jnp.int32)
    rows = jnp.where(alive, pos[:, 0], tables.height)  # removed avatars are not drawn
    codes = codes.at[rows, pos[:, 1]].add(upper, mode="drop")
    codes = jnp.where(wall, tables.wall_code, codes)
    return jnp.where(beam, tables.beam_code, codes)


def view_codes(tables: RenderTables, apples: jax.Array, pos: jax.Array, orient: jax.Array,
               alive: jax.Array, beam: jax.Array) -> jax.Array:
    """int32[n, 11, 11]: content code of each tile of each player's view."""
    n = tables.num_players
    u = tables.upper_count
    orient = orient.astype(jnp.int32)
    ground = jnp.asarray(tables.ground)
    # Occupant (player index + 1, 0 none) of each map tile.
    rows = jnp.where(alive, pos[:, 0], tables.height)
    occupant = jnp.zeros((tables.height, tables.width), jnp.int32)
    occupant = occupant.at[rows, pos[:, 1]].set(jnp.arange(1, n + 1, dtype=jnp.int32),
                                                mode="drop")
    base = jnp.where(beam, tables.beam_code, ground + apples.astype(jnp.int32) * u)
    cells = pos[:, None, None, :] + jnp.asarray(tables.offsets)[orient]  # [n, 11, 11, 2]
    r, c = cells[..., 0], cells[..., 1]
    inside = (r >= 0) & (r < tables.height) & (c >= 0) & (c < tables.width)
    r = jnp.clip(r, 0, tables.height - 1)
    c = jnp.clip(c, 0, tables.width - 1)
    code = base[r, c]
    other = occupant[r, c] - 1  # [n, 11, 11], -1 none
    viewer = jnp.arange(n, dtype=jnp.int32)[:, None, None]
    heading = (orient[jnp.maximum(other, 0)] - orient[:, None, None]) % 4
    upper = jnp.where(other == viewer, tables.self_code, 1 + 4 * other + heading)
    opaque = code >= tables.wall_code  # wall or beam: nothing below shows
    code = jnp.where((other >= 0) & ~opaque, code + upper, code)
    return jnp.where(inside, code, tables.oob_code)


# ---------------------------------------------------------------- observations

def tiles_from_arrays(tables: RenderTables, apples, pos, orient, alive, beam) -> jax.Array:
    """uint8[n, 11, 11, 3]: each player's view at 1 pixel per tile (see module doc)."""
    codes = view_codes(tables, apples, pos, orient, alive, beam)
    flat = jnp.asarray(tables.means).reshape(-1, 3)
    num_codes = tables.means.shape[1]
    out = flat[orient.astype(jnp.int32)[:, None, None] * num_codes + codes]
    return jnp.where(alive[:, None, None, None], out, jnp.uint8(0))


def pixels_from_arrays(tables: RenderTables, apples, pos, orient, alive, beam) -> jax.Array:
    """uint8[n, 88, 88, 3]: each player's RGB view (see module doc)."""
    n = tables.num_players
    codes = view_codes(tables, apples, pos, orient, alive, beam)
    flat = jnp.asarray(tables.blocks).reshape(-1, SPRITE, SPRITE, 3)
    num_codes = tables.blocks.shape[1]
    blocks = flat[orient.astype(jnp.int32)[:, None, None] * num_codes + codes]
    img = blocks.transpose(0, 1, 3, 2, 4, 5).reshape(n, VIEW_H * SPRITE, VIEW_W * SPRITE, 3)
    return jnp.where(alive[:, None, None, None], img, jnp.uint8(0))


def world_tiles_from_arrays(tables: RenderTables, apples, pos, orient, alive, beam) -> jax.Array:
    """uint8[H, W, 3]: WORLD.RGB at 1 pixel per tile."""
    codes = world_codes(tables, apples, pos, orient, alive, beam)
    return jnp.asarray(tables.means[0])[codes]


def world_rgb_from_arrays(tables: RenderTables, apples, pos, orient, alive, beam) -> jax.Array:
    """uint8[8H, 8W, 3]: WORLD.RGB (the whole map, not rotated)."""
    codes = world_codes(tables, apples, pos, orient, alive, beam)
    blocks = jnp.asarray(tables.blocks[0])[codes]  # [H, W, 8, 8, 3]
    h, w = tables.height, tables.width
    return blocks.transpose(0, 2, 1, 3, 4).reshape(h * SPRITE, w * SPRITE, 3)


# ---------------------------------------------------------------- TwinEnv/TwinState wrappers

def env_tables(env: Any) -> RenderTables:
    """The tables of a TwinEnv (its ascii map and player count)."""
    return tables_for(env.ascii_map, int(env.num_players))


def _fields(state: Any) -> tuple:
    beam = state.beam
    if beam.ndim == state.apples.ndim + 1:  # per-player beams: draw their union
        beam = beam.any(axis=-3)
    return state.apples, state.pos, state.orient, state.alive, beam


def tiles(env: Any, state: Any) -> jax.Array:
    """uint8[n, 11, 11, 3] == rllib_env.downsample(Lua RGB, 1), for one game."""
    return tiles_from_arrays(env_tables(env), *_fields(state))


def pixels(env: Any, state: Any) -> jax.Array:
    """uint8[n, 88, 88, 3] == the Lua RGB observations, for one game."""
    return pixels_from_arrays(env_tables(env), *_fields(state))


def world_tiles(env: Any, state: Any) -> jax.Array:
    """uint8[H, W, 3] == downsample(Lua WORLD.RGB, 1), for one game."""
    return world_tiles_from_arrays(env_tables(env), *_fields(state))


def world_rgb(env: Any, state: Any) -> jax.Array:
    """uint8[8H, 8W, 3] == Lua WORLD.RGB, for one game."""
    return world_rgb_from_arrays(env_tables(env), *_fields(state))
