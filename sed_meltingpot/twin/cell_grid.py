"""Who is where, through a grid of cells: the step's player-to-player queries in O(n).

The twin's rules ask, each step, which players stand in some cells: a move is
blocked by a live avatar in the target cell, a beam stops at the first live
avatar, a respawn point is free when no live avatar holds it, and a player sees
the players inside its view window (NEARBY, paper Eq. 8's neighbours). Written
directly (`world_rules.py`, `env.nearby`) each compares every player with every
other: O(n^2) per step, nothing for the paper's 7 players, most of the step from
a few hundred (256 players: 5x the grid's time on CPU). Here the same answers come
from a table indexed by cell: the count of live avatars in each cell
(`live_counts`), or the index of the live avatar in it (`occupants`), so each
query is one lookup and a step is O(n + cells).

The answers equal the direct ones (`tests/test_twin_scale.py` checks them
against a brute-force reference): live avatars never share a cell (spawns and
respawns take free points, moves into a held cell fail), which `occupants`
relies on; the counts are exact in any state. `TwinEnv.locality` picks the form:
"pairwise" (the direct one, what the Lua replay tests run) below
`GRID_FROM_PLAYERS` players, "grid" from there.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sed_meltingpot.core.rewards import SeenLists
from sed_meltingpot.twin.render import view_offsets

#: `TwinEnv.create(locality=...)`: the direct all-pairs queries or the cell grid's.
LOCALITIES = ("pairwise", "grid")
#: The automatic choice: the grid from this many players. About where the two forms
#: cost the same on CPU (`scripts/benchmark_scale.py --locality=both`: at 128 players
#: the grid is about 3x faster, at 7 they are within noise), and above the paper's maps'
#: default 7 and 16 players, which so keep the direct form the Lua replays check.
GRID_FROM_PLAYERS = 32


def choose_locality(num_players: int, locality: str | None = None) -> str:
    """`locality` if given (checked), else "grid" from GRID_FROM_PLAYERS players."""
    if locality is None:
        return "grid" if num_players >= GRID_FROM_PLAYERS else "pairwise"
    if locality not in LOCALITIES:
        raise ValueError(f"locality={locality!r} must be one of {LOCALITIES} (or None: "
                         f"the grid from {GRID_FROM_PLAYERS} players)")
    return locality


def live_counts(cells: jax.Array, alive: jax.Array, num_cells: int) -> jax.Array:
    """int32[num_cells]: live avatars in each flat cell."""
    return jnp.zeros((num_cells,), jnp.int32).at[cells].add(alive.astype(jnp.int32))


def occupants(cells: jax.Array, alive: jax.Array, num_cells: int) -> jax.Array:
    """int32[num_cells]: the index of the live avatar in each cell, n where none."""
    n = cells.shape[0]
    who = jnp.where(alive, jnp.arange(n, dtype=jnp.int32), n)
    return jnp.full((num_cells,), n, jnp.int32).at[cells].min(who)


def rank_among(due: jax.Array, priority: jax.Array) -> jax.Array:
    """int32[n]: for each i, how many due j have priority_j < priority_i (ties count
    none), by sorting: the count `sum(due[None] & (p[None] < p[:, None]), 1)` in
    O(n log n)."""
    ranked = jnp.sort(jnp.where(due, priority, jnp.inf))
    return jnp.searchsorted(ranked, priority, side="left").astype(jnp.int32)


def move_avatars(pos: jax.Array, alive: jax.Array, delta: jax.Array, moving: jax.Array,
                 order: jax.Array, wall: np.ndarray, height: int, width: int) -> jax.Array:
    """`world_rules.move_avatars` (moves one by one in `order`, blocked by the edge, a wall
    or a live avatar) with the live avatars kept in a count grid: O(1) per move.

    `delta` int32[n, 2] is each player's step (drow, dcol), `moving` bool[n] whether it
    moves at all: both are fixed before the first move (a heading changes by turns,
    and an action turns or moves, never both)."""
    n = pos.shape[0]
    wall = jnp.asarray(wall)
    counts = live_counts(pos[:, 0] * width + pos[:, 1], alive, height * width)

    def move_one(r, carry):
        pos, counts = carry
        i = order[r]
        me_pos, me_alive = pos[i], alive[i]
        target = me_pos + delta[i]
        inb = ((target[0] >= 0) & (target[0] < height) & (target[1] >= 0)
               & (target[1] < width))
        tcell = jnp.clip(target[0], 0, height - 1) * width + jnp.clip(target[1], 0, width - 1)
        # The target is never the mover's own cell, so every live avatar counted there
        # is another one.
        can = moving[i] & inb & (~me_alive | (~wall[tcell] & (counts[tcell] == 0)))
        moved = (can & me_alive).astype(jnp.int32)
        counts = counts.at[me_pos[0] * width + me_pos[1]].add(-moved).at[tcell].add(moved)
        return pos.at[i].set(jnp.where(can, target, me_pos)), counts

    pos, _ = jax.lax.fori_loop(0, n, move_one, (pos, counts))
    return pos


def window_offsets() -> np.ndarray:
    """int32[4, 120, 2]: per heading (N, E, S, W), the (drow, dcol) of each cell of the
    view window (the players' RGB view, `render.view_offsets`) other than the viewer's
    own."""
    offsets = view_offsets().reshape(4, -1, 2)
    return offsets[:, np.any(offsets[0] != 0, axis=-1)]


def seen_lists(pos: jax.Array, orient: jax.Array, alive: jax.Array, height: int,
               width: int) -> SeenLists:
    """Who each live player sees (`env.nearby`'s rule) as lists: SeenLists(int32[n, 120]),
    the live players in each cell of i's window, n where none (all n for a player out
    of play). The window has 120 other cells, so no list is ever cut short."""
    n = pos.shape[0]
    who = occupants(pos[:, 0] * width + pos[:, 1], alive, height * width)
    cells = pos[:, None, :] + jnp.asarray(window_offsets())[orient]         # [n, 120, 2]
    inb = ((cells[..., 0] >= 0) & (cells[..., 0] < height) & (cells[..., 1] >= 0)
           & (cells[..., 1] < width))
    flat = jnp.clip(cells[..., 0], 0, height - 1) * width + jnp.clip(cells[..., 1], 0,
                                                                      width - 1)
    seen = jnp.where(inb & alive[:, None], who[flat], n)
    return SeenLists(jnp.where(seen == jnp.arange(n)[:, None], n, seen))
