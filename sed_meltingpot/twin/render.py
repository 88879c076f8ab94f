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
  The sprites are stored for 128 players; a larger game (a generated map, twin
  only) repeats them with the substrate's palette period (`avatar_sprite_index`).
* A player sees itself as Commons Harvest's `Self` sprite (TARGET_SPRITE_SELF,
  the blue avatar facing up in its own view); WORLD.RGB shows its own colour.
* The zap beam is one opaque colour (`beamColor`, default (252, 252, 106)) over
  whole tiles on the frame of the zap, above everything else.
* Tiles of the view beyond the map edge are `OutOfBounds`: black (0, 0, 0).
* A player out of play after a zap sees all zeros.

`tiles` (1 pixel per tile) is the floor of each 8x8 block's mean, as
`observations.downsample(RGB, 1)` computes; it gathers from a table of each tile
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
from sed_meltingpot.twin.generated_map import MAX_PLAYERS

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
    floor / 1 grass, apple 0/1, upper 0 nothing, `1 + 4 j + h` avatar j with
    absolute heading h, `4 n + 1` the viewer itself (U = 4 n + 2); then the
    opaque codes WALL = 4 U, BEAM = 4 U + 1, OOB = 4 U + 2 (beyond the map) and
    DEAD = 4 U + 3 (the black view of a player out of play).
    `blocks[o, code]` is the tile's 8x8 RGB in a view of orientation o (o = 0
    for WORLD.RGB): ground and wall turned by o, avatar j drawn with its
    heading relative to the viewer, (h - o) mod 4. `means[o, code]` is the
    floor of the block's mean (the 1-pixel tile).
    """

    num_players: int
    height: int
    width: int
    ground: np.ndarray       # int32[H, W]: ground*2*U, or WALL on wall tiles
    wall: np.ndarray         # bool[H, W]
    blocks: np.ndarray       # uint8[4, K, 8, 8, 3]
    means: np.ndarray        # uint8[4, K, 3]
    view_index: np.ndarray   # int32[4, 121]: flat offset of each view tile in the padded grid

    @property
    def num_codes(self) -> int:
        return self.blocks.shape[1]

    @property
    def upper_count(self) -> int:
        return 4 * self.num_players + 2

    @property
    def self_code(self) -> int:
        return 4 * self.num_players + 1

    @property
    def wall_code(self) -> int:
        return 4 * self.upper_count

    @property
    def beam_code(self) -> int:
        return self.wall_code + 1

    @property
    def oob_code(self) -> int:
        return self.wall_code + 2

    @property
    def dead_code(self) -> int:
        return self.wall_code + 3


# The world grid is padded by this many OOB tiles so every view tile is inside it.
PAD = max(data.VIEW_FORWARD, data.VIEW_BACKWARD, data.VIEW_LEFT, data.VIEW_RIGHT)
# Past its 16 named colours the substrate colours avatars from Melting Pot's 62-colour
# `colors.palette`, repeating (`substrates/apple_picking.py`); the stored sprites cover
# 128 players, and a larger game (a generated map, twin only) repeats them the same way.
_PALETTE_PERIOD = 62


def avatar_sprite_index(num_players: int, num_stored: int) -> np.ndarray:
    """int[n]: the stored sprite of each player: its own while stored, else the one a
    whole number of palette periods before it (the substrate's colour)."""
    j = np.arange(num_players)
    back = np.maximum(0, -(-(j - num_stored + 1) // _PALETTE_PERIOD))  # ceil, >= 0
    return j - back * _PALETTE_PERIOD


def build_tables(ascii_map: str, num_players: int) -> RenderTables:
    """Composes every tile content's block once (numpy), for the map and player count."""
    assets = load_assets()
    if not 1 <= num_players <= MAX_PLAYERS:
        raise ValueError(f"num_players={num_players} is outside [1, {MAX_PLAYERS}]")
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
    num_codes = 4 * u + 4
    grid = np.array([list(r) for r in rows])
    wall = grid == data.WALL
    grass = np.isin(grid, [data.APPLE, data.EATEN_APPLE])
    ground = np.where(wall, 4 * u, grass.astype(np.int32) * 2 * u).astype(np.int32)

    def turned(name: str, o: int) -> np.ndarray:
        sprite = assets[name]
        return sprite if bool(assets[f"{name}_no_rotate"]) else np.rot90(sprite, o)

    blank = np.zeros((SPRITE, SPRITE, 3), np.uint8)
    blocks = np.zeros((4, num_codes, SPRITE, SPRITE, 3), np.uint8)
    avatars = assets["avatar"][avatar_sprite_index(n, assets["avatar"].shape[0])]
    for o in range(4):
        for g, ground_name in enumerate(("floor", "grass")):
            for apple in (0, 1):
                base = _over(blank, turned(ground_name, o))
                if apple:
                    base = _over(base, turned("apple", o))
                code0 = (g * 2 + apple) * u
                blocks[o, code0] = base
                # Avatar j with absolute heading h at code0 + 1 + 4 j + h.
                blocks[o, code0 + 1:code0 + 1 + 4 * n] = _over(
                    base, avatars[:, [(h - o) % 4 for h in range(4)]]).reshape(
                        4 * n, SPRITE, SPRITE, 3)
                blocks[o, code0 + 4 * n + 1] = _over(base, assets["self"][0])
        blocks[o, 4 * u] = _over(blank, turned("wall", o))
        blocks[o, 4 * u + 1] = assets["beam"][:3]
        blocks[o, 4 * u + 2] = assets["out_of_bounds"][:3]
        blocks[o, 4 * u + 3] = 0  # a removed player's view
    # Floor of the mean over the 8x8 block, as observations.downsample (exact: /64).
    means = (blocks.astype(np.int32).sum(axis=(2, 3)) // (SPRITE * SPRITE)).astype(np.uint8)
    offsets = view_offsets().reshape(4, VIEW_H * VIEW_W, 2)
    view_index = (offsets[..., 0] * (width + 2 * PAD) + offsets[..., 1]).astype(np.int32)
    return RenderTables(num_players=n, height=height, width=width, ground=ground, wall=wall,
                        blocks=blocks, means=means, view_index=view_index)


@functools.lru_cache(maxsize=16)
def tables_for(ascii_map: str, num_players: int) -> RenderTables:
    """Cached `build_tables` (one per map and player count)."""
    return build_tables(ascii_map, num_players)


def _get(table: jax.Array, index: jax.Array) -> jax.Array:
    """table[index] for indices in range by construction (XLA's fast gather on CPU)."""
    return table.at[index].get(mode="promise_in_bounds")


def _materialize(index: jax.Array, zero: jax.Array) -> jax.Array:
    """`index` unchanged, computed once before a gather of large slices.

    XLA on CPU fuses an index's whole computation into the gather that uses it
    and recomputes it for every byte gathered (20x slower for 8x8 blocks); it
    drops `optimization_barrier`, but never fuses a scatter into its consumer.
    So this scatters `index` onto itself at positions offset by `zero`, a
    traced 0 the compiler cannot fold.
    """
    flat = index.reshape(-1)
    at = jnp.arange(flat.size, dtype=jnp.int32) + zero
    out = jnp.zeros_like(flat).at[at].set(flat, mode="promise_in_bounds", unique_indices=True)
    return out.reshape(index.shape)


def _traced_zero(orient: jax.Array) -> jax.Array:
    return jnp.minimum(orient.reshape(-1)[0].astype(jnp.int32) & 3, 0)


# ---------------------------------------------------------------- tile codes

def world_codes(tables: RenderTables, apples: jax.Array, pos: jax.Array, orient: jax.Array,
                alive: jax.Array, beam: jax.Array) -> jax.Array:
    """int32[H, W]: each map tile's content code, avatars with their absolute heading."""
    n = tables.num_players
    codes = jnp.asarray(tables.ground) + apples.astype(jnp.int32) * tables.upper_count
    upper = 1 + 4 * jnp.arange(n, dtype=jnp.int32) + orient.astype(jnp.int32)
    rows = jnp.where(alive, pos[:, 0], tables.height)  # removed avatars are not drawn
    codes = codes.at[rows, pos[:, 1]].add(upper, mode="drop")
    codes = jnp.where(jnp.asarray(tables.wall), tables.wall_code, codes)
    return jnp.where(beam, tables.beam_code, codes)


def view_codes(tables: RenderTables, apples: jax.Array, pos: jax.Array, orient: jax.Array,
               alive: jax.Array, beam: jax.Array) -> jax.Array:
    """int32[n, 121]: content code of each tile of each player's view (row-major 11x11)."""
    n, h, w = tables.num_players, tables.height, tables.width
    orient = orient.astype(jnp.int32)
    world = world_codes(tables, apples, pos, orient, alive, beam)
    padded = jnp.pad(world, PAD, constant_values=tables.oob_code).reshape(-1)
    r = jnp.clip(pos[:, 0], 0, h - 1) + PAD
    c = jnp.clip(pos[:, 1], 0, w - 1) + PAD
    index = (r * (w + 2 * PAD) + c)[:, None] + _get(jnp.asarray(tables.view_index), orient)
    codes = _get(padded, index)
    # The viewer's own tile: its avatar drawn as `Self` (unless a beam covers it).
    me = data.VIEW_FORWARD * VIEW_W + data.VIEW_LEFT
    own = codes[:, me]
    upper = 1 + 4 * jnp.arange(n, dtype=jnp.int32) + orient
    own = jnp.where(own >= tables.wall_code, own, own - upper + tables.self_code)
    codes = codes.at[:, me].set(own)
    return jnp.where(alive[:, None], codes, tables.dead_code)


# ---------------------------------------------------------------- observations

def tiles_from_arrays(tables: RenderTables, apples, pos, orient, alive, beam) -> jax.Array:
    """uint8[n, 11, 11, 3]: each player's view at 1 pixel per tile (see module doc)."""
    codes = view_codes(tables, apples, pos, orient, alive, beam)
    index = orient.astype(jnp.int32)[:, None] * tables.num_codes + codes
    out = _get(jnp.asarray(tables.means.reshape(-1, 3)), index)
    return out.reshape(tables.num_players, VIEW_H, VIEW_W, 3)


def pixels_from_arrays(tables: RenderTables, apples, pos, orient, alive, beam) -> jax.Array:
    """uint8[n, 88, 88, 3]: each player's RGB view (see module doc)."""
    n = tables.num_players
    codes = view_codes(tables, apples, pos, orient, alive, beam)
    index = (orient.astype(jnp.int32)[:, None] * tables.num_codes + codes).reshape(
        n, VIEW_H, VIEW_W)
    index = _materialize(index, _traced_zero(orient))
    blocks = _get(jnp.asarray(tables.blocks.reshape(-1, SPRITE, SPRITE, 3)), index)
    return blocks.transpose(0, 1, 3, 2, 4, 5).reshape(n, VIEW_H * SPRITE, VIEW_W * SPRITE, 3)


def world_tiles_from_arrays(tables: RenderTables, apples, pos, orient, alive, beam) -> jax.Array:
    """uint8[H, W, 3]: WORLD.RGB at 1 pixel per tile."""
    codes = world_codes(tables, apples, pos, orient, alive, beam)
    return _get(jnp.asarray(tables.means[0]), codes)


def world_rgb_from_arrays(tables: RenderTables, apples, pos, orient, alive, beam) -> jax.Array:
    """uint8[8H, 8W, 3]: WORLD.RGB (the whole map, not rotated)."""
    codes = world_codes(tables, apples, pos, orient, alive, beam)
    h, w = tables.height, tables.width
    codes = _materialize(codes, _traced_zero(orient))
    blocks = _get(jnp.asarray(tables.blocks[0]), codes)  # [H, W, 8, 8, 3]
    return blocks.transpose(0, 2, 1, 3, 4).reshape(h * SPRITE, w * SPRITE, 3)


# ---------------------------------------------------------------- TwinEnv/TwinState wrappers

def env_tables(env: Any) -> RenderTables:
    """The tables of a TwinEnv (its ascii map and player count)."""
    return tables_for(env.ascii_map, int(env.num_players))


def _fields(state: Any) -> tuple:
    return state.apples, state.pos, state.orient, state.alive, state.beam


def tiles(env: Any, state: Any) -> jax.Array:
    """uint8[n, 11, 11, 3] == observations.downsample(Lua RGB, 1), for one game."""
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
