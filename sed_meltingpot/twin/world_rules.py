"""The rules of one step of the twin world, one small pure function each.

`TwinEnv.step_in_order` (`twin/env.py`, whose docstring states the rules in
full) calls them in the engine's order: regrowth (`regrow_apples`,
`eat_underfoot`), turns and moves (`turn_avatars`, `move_avatars`,
`eat_on_arrival`), zaps (`fire_zappers`, `zap_beams`), respawn
(`respawn_scores`, `respawn_zapped`) and the end of the step (`leave_eaten`,
`leave_and_return`, `tick_clock`). Each takes the static fields of the
`TwinEnv` it needs (numpy tables, python ints) as arguments; cells are flat
indices `row * width + col`, apples are indexed by the env's apple tables
(`twin/world_layout.py`, A = padding).

The rules that ask which players stand where (a move into a held cell, a beam
stopping at an avatar, a free respawn point, the respawn order) take `locality`:
"pairwise" compares every player with every other (O(n^2), the form the Lua
replay tests were written against), "grid" asks a table of cells
(`twin/cell_grid.py`, O(n)); both give the same outcome.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sed_meltingpot.substrates import apple_picking_data as data
from sed_meltingpot.twin import cell_grid

# (drow, dcol) of N, E, S, W.
DIRS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], np.int32)
# Per action: the move direction relative to the facing one (-1: no move),
# and the turn (+1 clockwise).
MOVE_REL = np.array([-1, 0, 2, 3, 1, -1, -1, -1], np.int32)
TURN = np.array([0, 0, 0, 0, 0, -1, 1, 0], np.int32)
FIRE_ZAP = data.ACTION_NAMES.index("FIRE_ZAP")


def cells_of(pos: jax.Array, width: int) -> jax.Array:
    """int32[n] flat cells `row * width + col` of positions int32[n, 2]."""
    return pos[:, 0] * width + pos[:, 1]


def _pad(flags: jax.Array) -> jax.Array:
    """`flags` bool[A] with a False appended at index A (the tables' padding)."""
    return jnp.concatenate([flags, jnp.zeros((1,), bool)])


def regrow_apples(live: jax.Array, key: jax.Array, neighbours: np.ndarray,
                  probabilities: tuple[float, ...]) -> jax.Array:
    """Lua `DensityRegrowth:update`: waiting apples regrowing, by live-neighbour count."""
    counts = _pad(live)[jnp.asarray(neighbours)].sum(-1)
    probs = jnp.asarray(probabilities, jnp.float32)
    p = probs[jnp.minimum(counts, len(probabilities) - 1)]
    return ~live & (jax.random.uniform(key, live.shape) < p)


def eat_underfoot(cell: jax.Array, alive: jax.Array, regrown: jax.Array,
                  cell_to_apple: np.ndarray) -> jax.Array:
    """Engine order: regrowth lands before moves, so a live avatar on it eats it at once."""
    return alive & _pad(regrown)[jnp.asarray(cell_to_apple)[cell]]


def turn_avatars(orient: jax.Array, actions: jax.Array) -> jax.Array:
    """Avatar TURN_LEFT/TURN_RIGHT: a quarter turn of the heading (hidden pieces too)."""
    return (orient + jnp.asarray(TURN)[actions]) % 4


def move_avatars(pos: jax.Array, orient: jax.Array, alive: jax.Array, actions: jax.Array,
                 order: jax.Array, wall: np.ndarray, height: int, width: int,
                 locality: str = "pairwise") -> jax.Array:
    """Avatar moves (priority 150), one by one in `order`: blocked by edge, wall, live avatar."""
    # A zapped avatar's hidden piece moves anywhere in bounds. `orient` is the heading
    # before the step's turns (an action turns or moves, never both).
    n = pos.shape[0]
    players = jnp.arange(n)
    dirs, wall = jnp.asarray(DIRS), jnp.asarray(wall)
    move_rel = jnp.asarray(MOVE_REL)[actions]
    if locality == "grid":
        return cell_grid.move_avatars(pos, alive, dirs[(orient + move_rel) % 4], move_rel >= 0,
                                      order, wall, height, width)

    def move_one(r, pos):
        sel = players == order[r]
        me_pos = jnp.sum(jnp.where(sel[:, None], pos, 0), 0)
        me_orient = jnp.sum(jnp.where(sel, orient, 0))
        me_alive = jnp.any(sel & alive)
        me_rel = jnp.sum(jnp.where(sel, move_rel, 0))
        target = me_pos + dirs[(me_orient + me_rel) % 4]
        inb = ((target[0] >= 0) & (target[0] < height) & (target[1] >= 0)
               & (target[1] < width))
        tcell = jnp.clip(target[0], 0, height - 1) * width + jnp.clip(target[1], 0, width - 1)
        occupied = jnp.any(alive & ~sel & (pos[:, 0] == target[0])
                           & (pos[:, 1] == target[1]))
        can = (me_rel >= 0) & inb & (~me_alive | (~wall[tcell] & ~occupied))
        return jnp.where(sel[:, None], jnp.where(can, target, me_pos), pos)

    return jax.lax.fori_loop(0, n, move_one, pos, unroll=False)


def eat_on_arrival(cell: jax.Array, alive: jax.Array, actions: jax.Array, live: jax.Array,
                   cell_to_apple: np.ndarray) -> jax.Array:
    """Lua `Harvestable:onEnter`: a live mover entering (or re-entering) a live apple eats it."""
    moving = jnp.asarray(MOVE_REL)[actions] >= 0
    return alive & moving & _pad(live)[jnp.asarray(cell_to_apple)[cell]]


def fire_zappers(alive: jax.Array, zap_timer: jax.Array,
                 actions: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Zapper (priority 140): who fires (FIRE_ZAP, not cooling) and the cooling timers after."""
    cooling = alive & (zap_timer > 0)
    fired = alive & ~cooling & (actions == FIRE_ZAP)
    zap_timer = jnp.where(cooling, zap_timer - 1,
                          jnp.where(fired, data.ZAP_COOLDOWN, zap_timer))
    return fired, zap_timer


# The beam's static line layout (side offset, first step ahead, cells) as in DMLab2D
# `Grid::HitBeamActual`: per side r = 1..R the line from the side cell r, BEAM_LENGTH -
# r + 1 long, then the centre line from the cell ahead, BEAM_LENGTH long.
_BEAM_LINES = [(side * r, 0, data.BEAM_LENGTH - r + 1) for side in (-1, 1)
               for r in range(1, data.BEAM_RADIUS + 1)] + [(0, 1, data.BEAM_LENGTH)]
_BEAM_SIDE = np.array([s for s, _, _ in _BEAM_LINES], np.int32)              # [L]
_BEAM_AHEAD = np.array([[k0 + k for k in range(data.BEAM_LENGTH + 1)]       # [L, K]
                        for _, k0, _ in _BEAM_LINES], np.int32)
_BEAM_VALID = np.array([[k < m for k in range(data.BEAM_LENGTH + 1)]        # [L, K]
                        for _, _, m in _BEAM_LINES])


def zap_beams(pos: jax.Array, orient: jax.Array, alive: jax.Array, fired: jax.Array,
              wall: np.ndarray, height: int, width: int,
              locality: str = "pairwise") -> tuple[jax.Array, jax.Array]:
    """DMLab2D `HitBeam`: the beam cells drawn (bool[H, W]) and who is hit (bool[n])."""
    # Each line of `_BEAM_LINES` stops at the first cell off the grid, with a wall or with
    # a live avatar (hit), not drawn; a side stops widening once a line is blocked at its
    # first cell.
    h, w = height, width
    length, lines = data.BEAM_LENGTH, _BEAM_LINES
    side_off, ahead, valid = _BEAM_SIDE, _BEAM_AHEAD, _BEAM_VALID
    dirs = jnp.asarray(DIRS)
    fwd = dirs[orient]                        # [n, 2]
    right = dirs[(orient + 1) % 4]            # [n, 2]
    cells = (pos[:, None, None, :] + jnp.asarray(side_off)[None, :, None, None]
             * right[:, None, None, :] + jnp.asarray(ahead)[None, :, :, None]
             * fwd[:, None, None, :])         # [n, L, K, 2]
    inb = ((cells[..., 0] >= 0) & (cells[..., 0] < h) & (cells[..., 1] >= 0)
           & (cells[..., 1] < w))
    flat = jnp.clip(cells[..., 0], 0, h - 1) * w + jnp.clip(cells[..., 1], 0, w - 1)
    if locality == "grid":
        avatar_here = inb & (cell_grid.live_counts(cells_of(pos, w), alive, h * w)[flat] > 0)
    else:
        at = ((cells[..., None, 0] == pos[:, 0]) & (cells[..., None, 1] == pos[:, 1])
              & alive)                         # [n, L, K, n]: avatar j in the cell
        avatar_here = jnp.any(at, -1)
    block = jnp.asarray(valid) & (~inb | jnp.asarray(wall)[flat] | avatar_here)
    before = jnp.cumsum(block, -1)
    first_block = block & (before == 1)
    reached = jnp.asarray(valid) & (before == 0)
    # A side line blocked at its first cell stops that side widening further.
    line_on = jnp.ones(block.shape[:2], bool)
    for li, (s, _, _) in enumerate(lines):
        if abs(s) > 1:
            prev = lines.index((s - np.sign(s), 0, length - abs(s) + 2))
            line_on = line_on.at[:, li].set(line_on[:, prev] & ~block[:, prev, 0])
    live = fired[:, None, None] & line_on[:, :, None]
    if locality == "grid":  # the avatars in the cells where a live line stops at one
        stops = (live & first_block & avatar_here).reshape(-1)
        hit_cell = jnp.zeros((h * w,), bool).at[flat.reshape(-1)].max(stops)
        hit = alive & hit_cell[cells_of(pos, w)]
    else:
        hit = jnp.any(at & (live & first_block)[..., None], (0, 1, 2))
    drawn = (live & reached).reshape(-1)
    beam = jnp.zeros((h * w,), bool).at[flat.reshape(-1)].max(drawn).reshape(h, w)
    return beam, hit


def respawn_scores(points: jax.Array, cell: jax.Array, alive: jax.Array, hit: jax.Array,
                   key: jax.Array, locality: str = "pairwise", num_cells: int = 0
                   ) -> jax.Array:
    """Engine teleport: points free now first, then ones this step's zaps free, random order."""
    # A teleport that finds no free point is retried by the engine within the step, after
    # the zapped avatars have left: scores >= 2 free now, >= 1 freed by zaps, < 0 held.
    # `num_cells` (H * W) sizes the grid of "grid".
    if locality == "grid":
        held = cell_grid.live_counts(cell, alive, num_cells)[points] > 0
        held_after = cell_grid.live_counts(cell, alive & ~hit, num_cells)[points] > 0
    else:
        at_point = points[:, None] == cell[None, :]
        held = jnp.any(at_point & alive[None, :], 1)                 # during the first flush
        held_after = jnp.any(at_point & (alive & ~hit)[None, :], 1)  # zapped ones gone
    return jax.random.uniform(key, points.shape) + jnp.where(
        ~held, 2.0, jnp.where(~held_after, 1.0, -2.0))


def respawn_zapped(pos: jax.Array, orient: jax.Array, alive: jax.Array, wait: jax.Array,
                   hit: jax.Array, respawn_points: np.ndarray, width: int, *,
                   k_spawn: jax.Array, k_prio: jax.Array, k_orient: jax.Array,
                   locality: str = "pairwise", height: int = 0
                   ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Respawn (priority 135): players out FRAMES_TILL_RESPAWN frames reappear, random heading."""
    # The due players take distinct points, the best-scored ones, in a uniformly random
    # order (the engine shuffles the respawn updater's group: it matters when points run
    # short). Returns (respawned bool[n], pos, orient).
    n = pos.shape[0]
    if locality == "grid" and height < 1:
        raise ValueError(f"height={height!r}: locality='grid' needs the map's height")
    due = ~alive & (wait >= data.FRAMES_TILL_RESPAWN)
    points = jnp.asarray(respawn_points)
    scores = respawn_scores(points, cells_of(pos, width), alive, hit, k_spawn, locality,
                            height * width)
    k = min(n, len(respawn_points))
    best_scores, best = jax.lax.top_k(scores, k)
    prio = jax.random.uniform(k_prio, (n,))
    if locality == "grid":
        rank = cell_grid.rank_among(due, prio)
    else:
        rank = jnp.sum(due[None, :] & (prio[None, :] < prio[:, None]), 1)
    rank_c = jnp.clip(rank, 0, k - 1)
    respawned = due & (rank < k) & (best_scores[rank_c] >= 1.0)
    spawn_cell = points[best[rank_c]]
    spawn_pos = jnp.stack([spawn_cell // width, spawn_cell % width], -1)
    pos = jnp.where(respawned[:, None], spawn_pos, pos)
    orient = jnp.where(respawned, jax.random.randint(k_orient, (n,), 0, 4, jnp.int32),
                       orient)
    return respawned, pos, orient


def leave_eaten(apples: jax.Array, live: jax.Array,
                eats: Sequence[tuple[jax.Array, jax.Array]], apple_cells: np.ndarray,
                cell_to_apple: np.ndarray) -> tuple[jax.Array, jax.Array]:
    """Lua `Harvestable`: apples eaten (`eats`: (cell, ate) pairs) wait from the step's end."""
    # Returns the apple map bool[H, W] and the live apples bool[A] after the step.
    num_apples = len(apple_cells)
    cell_to_apple = jnp.asarray(cell_to_apple)
    eaten = jnp.zeros((num_apples + 1,), bool)
    for cell, ate in eats:
        eaten = eaten.at[cell_to_apple[cell]].max(ate)
    live = live & ~eaten[:num_apples]
    flat = apples.reshape(-1).at[jnp.asarray(apple_cells)].set(live)
    return flat.reshape(apples.shape), live


def leave_and_return(alive: jax.Array, wait: jax.Array, hit: jax.Array,
                     respawned: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Zapped avatars leave play, respawned ones return; frames out count up (engine state)."""
    alive_next = (alive & ~hit) | respawned
    return alive_next, jnp.where(alive_next, 0, jnp.where(alive, 0, wait + 1))


def tick_clock(step: jax.Array, episode_length: int) -> tuple[jax.Array, jax.Array]:
    """The episode clock: one frame a step, done at `maxEpisodeLengthFrames` (fixed length)."""
    step = step + 1
    return step, step >= episode_length
