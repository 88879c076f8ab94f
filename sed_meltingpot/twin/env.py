"""A pure-JAX twin of the Lua substrate `apple_picking` (and `apple_picking__large`).

`TwinEnv.reset`/`TwinEnv.step` are pure functions of fixed-shape arrays, so a
batch of games is `jax.vmap(env.step)` and a rollout is `jax.lax.scan`. The
rules are those of the Lua level (`lua/levels/apple_picking`), Melting Pot's
Commons Harvest avatar and zapper (`meltingpot/lua/modules/avatar_library.lua`)
and the DMLab2D engine that runs them (`dmlab2d/lib/system/grid_world/grid.cc`).
One step of the engine, in its order:

1. Lua `update`: every eaten apple regrows with probability
   `regrowth_probabilities[min(k, last)]`, k = live apples within
   `regrowth_radius` (L2 disc, own cell excluded) at the start of the step.
   The engine queues these state changes first, so they are applied before
   any move: an avatar standing on a regrowing cell eats the apple at once.
2. Moves and turns (updater priority 150), one avatar after another in a
   uniformly random order (the engine shuffles the updater's group). A move
   is egocentric (forward/backward/left/right of the facing direction) and
   fails off the grid, into a wall or into a cell that a live avatar holds at
   that moment (so a chain of avatars moving in line depends on the order).
   An avatar that enters a cell with a live apple eats it (+1); a blocked
   move re-enters the avatar's own cell (engine behaviour), which eats an
   apple that regrew under it this step a second time. The eaten apple turns
   to "waiting" only at the end of the step. Zapped avatars keep turning and
   moving as hidden pieces (in bounds, through anything), as the engine does.
3. Zaps (priority 140), for live avatars: a cooling timer > 0 counts down
   instead of firing; otherwise FIRE_ZAP fires and sets it to ZAP_COOLDOWN.
   The beam (DMLab2D `HitBeam`, length 3, radius 1) covers the 3 cells ahead
   and, on each side, the side cell and the 2 ahead of it; each of its lines
   stops at the first wall, map edge or live avatar, and such an avatar is
   zapped (out of play from the end of the step). Beams are resolved after all
   moves and before anyone leaves the grid, so their order does not matter.
4. Respawn (priority 135): an avatar out of play for FRAMES_TILL_RESPAWN
   frames (it was zapped 5 steps earlier) reappears on a uniformly random
   respawn point that no avatar holds after this step's moves, facing a
   uniformly random direction; several respawning players take distinct
   points, drawn one after another in a random order. A player that finds no
   free point gets one freed by this step's zaps if any (the engine retries the
   teleport within the step after the zapped avatars left), else it waits and
   tries again next step.

Observations derived from the state (StepOut) follow the Lua components:
APPLES_EATEN, NEARBY (view window 9 ahead, 1 behind, 5 to each side),
ZAPPED, READY_TO_SHOOT = max(1 - timer / ZAP_COOLDOWN, 0) for live avatars.

Engine-random decisions and the rule implemented for each (same distribution,
different random numbers, so tests compare them distributionally):
* the order of moves: a uniform random permutation of the players;
* initial spawn points: uniform without replacement within each group (first
  NUM_INSIDE_SPAWNS players on `Q`, the rest on `P`), uniform orientation;
* respawn points: uniform over free respawn points, distinct within a step
  (top-k of uniform scores, handed out in a uniformly random order of the
  due players), uniform orientation;
* regrowth: one Bernoulli per waiting apple per step.

This module imports only jax, numpy, flax and the meltingpot-free
`sed_meltingpot.substrates.apple_picking_data`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from sed_meltingpot.substrates import apple_picking_data as data

# (drow, dcol) of N, E, S, W.
_DIRS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], np.int32)
# Per action: the move direction relative to the facing one (-1: no move),
# and the turn (+1 clockwise).
_MOVE_REL = np.array([-1, 0, 2, 3, 1, -1, -1, -1], np.int32)
_TURN = np.array([0, 0, 0, 0, 0, -1, 1, 0], np.int32)
FIRE_ZAP = data.ACTION_NAMES.index("FIRE_ZAP")

_SUBSTRATE_DEFAULTS = {
    "apple_picking": {},
    "apple_picking__large": {"map": "large", "num_players": 16},
}


@struct.dataclass
class TwinState:
    """The state of one game (add leading axes with vmap).

    pos: int32[n, 2] (row, col), row 0 = the map's top row. A zapped player's
      entry is its hidden piece's (it keeps following move actions, as in Lua).
    orient: int32[n], 0 N, 1 E, 2 S, 3 W (Melting Pot's ORIENTATION coding).
    alive: bool[n], False while out of play after a zap.
    apples: bool[H, W], a live apple in the cell.
    zap_timer: int32[n], the Zapper's cooling timer (0 = may fire next step).
    wait: int32[n], frames a zapped player has been out of play (the engine's
      frames-in-state count); respawn when it reaches FRAMES_TILL_RESPAWN.
    step: int32, steps taken in the episode.
    beam: bool[H, W], cells the zap beams of the last step were drawn on (for
      rendering: the `beamZap` layer, drawn above the avatars; all beams look
      the same, so one union is enough). Blocked cells are not drawn.
    fired: bool[n], who fired a beam in the last step.
    """

    pos: jax.Array
    orient: jax.Array
    alive: jax.Array
    apples: jax.Array
    zap_timer: jax.Array
    wait: jax.Array
    step: jax.Array
    beam: jax.Array
    fired: jax.Array


@struct.dataclass
class StepOut:
    """What the Lua substrate reports after a step (per game).

    apples_eaten: float32[n], this step. nearby: bool[n, n], nearby[i, j] when
    j is inside i's view window (never i itself; zapped players see and are
    seen by no one). zapped: bool[n], out of play after this step.
    ready_to_shoot: float32[n]. num_apples: int32, live apples. done: bool,
    step == episode_length.
    """

    apples_eaten: jax.Array
    nearby: jax.Array
    zapped: jax.Array
    ready_to_shoot: jax.Array
    num_apples: jax.Array
    done: jax.Array


def _parse_map(ascii_map: str) -> list[str]:
    if not isinstance(ascii_map, str):
        raise ValueError(f"map must be a string, got {type(ascii_map).__name__}")
    rows = data.map_rows(ascii_map)
    if not rows or not rows[0] or len({len(r) for r in rows}) != 1:
        raise ValueError("map is malformed: it must be a non-empty rectangle of tiles")
    unknown = sorted(set("".join(rows)) - set(data.MAP_CHARS))
    if unknown:
        raise ValueError(f"map has unknown tile characters {unknown}; allowed: "
                         f"{sorted(data.MAP_CHARS)}")
    return rows


def _flat_where(rows: list[str], chars: str) -> np.ndarray:
    width = len(rows[0])
    return np.array([r * width + c for r, row in enumerate(rows) for c, ch in enumerate(row)
                     if ch in chars], np.int32)


@dataclasses.dataclass(frozen=True, eq=False)
class TwinEnv:
    """Static description of one substrate configuration (numpy data, python ints).

    Build with `TwinEnv.create`; `reset` and `step` are pure and jit/vmap-able.
    Hashes by identity, so it can be closed over or passed as a static argument.
    """

    num_players: int
    height: int
    width: int
    episode_length: int
    regrowth_probabilities: tuple[float, ...]
    regrowth_radius: float
    apple_reward: float
    ascii_map: str
    wall: np.ndarray            # bool[H*W]
    initial_apples: np.ndarray  # bool[H*W]
    apple_cells: np.ndarray     # int32[A] flat cells that hold an apple (live or not)
    cell_to_apple: np.ndarray   # int32[H*W] apple index of a cell, A where none
    neighbours: np.ndarray      # int32[A, K] apple indices within the radius, A = padding
    inside_spawns: np.ndarray   # int32[Q] flat cells of `Q`
    outer_spawns: np.ndarray    # int32[P] flat cells of `P`
    respawn_points: np.ndarray  # int32[R] where zapped players reappear
    num_inside: int             # players starting on `Q`

    num_actions: int = data.NUM_ACTIONS

    @classmethod
    def create(
        cls,
        substrate: str = "apple_picking",
        num_players: int | None = None,
        episode_length: int | None = None,
        regrowth_probabilities: Sequence[float] | None = None,
        map: str | None = None,  # noqa: A002 (the GameConfig field's name)
        *,
        regrowth_radius: float | None = None,
        apple_reward: float | None = None,
    ) -> TwinEnv:
        """The twin of `sed_meltingpot.substrate.build(substrate, **overrides)`.

        `map` is "default", "large" or an ASCII map; None keeps the substrate's.
        Raises ValueError naming a bad argument, its value and the allowed range.
        """
        if substrate not in _SUBSTRATE_DEFAULTS:
            raise ValueError(f"Unknown substrate {substrate!r}; available: "
                             f"{', '.join(_SUBSTRATE_DEFAULTS)}")
        defaults = _SUBSTRATE_DEFAULTS[substrate]
        map = map if map is not None else defaults.get("map", "default")
        ascii_map = {"default": data.ASCII_MAP, "large": data.ASCII_MAP_LARGE}.get(map, map)
        if map not in ("default", "large") and "\n" not in map:
            raise ValueError(f"map={map!r} is not 'default', 'large' or an ASCII map")
        rows = _parse_map(ascii_map)
        height, width = len(rows), len(rows[0])
        n = num_players if num_players is not None else defaults.get(
            "num_players", data.NUM_PLAYERS)
        inside, outer = _flat_where(rows, data.INSIDE_SPAWN), _flat_where(rows, data.SPAWN)
        if len(inside) + len(outer) == 0:
            raise ValueError("map is malformed: it has no spawn points ('P' or 'Q')")
        num_inside = min(data.NUM_INSIDE_SPAWNS, len(inside))
        capacity = num_inside + len(outer)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= capacity:
            raise ValueError(f"num_players={n!r} is outside [1, {capacity}]: the map has "
                             f"{capacity} spawn points")
        length = data.EPISODE_LENGTH if episode_length is None else episode_length
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            raise ValueError(f"episode_length={length!r} must be a positive integer")
        probs = tuple(float(p) for p in (data.REGROWTH_PROBABILITIES
                                         if regrowth_probabilities is None
                                         else regrowth_probabilities))
        if not probs:
            raise ValueError("regrowth_probabilities is empty; give one per neighbour count")
        for k, p in enumerate(probs):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"regrowth_probabilities[{k}]={p!r} is outside [0, 1]")
        radius = data.REGROWTH_RADIUS if regrowth_radius is None else float(regrowth_radius)
        if not radius >= 0:
            raise ValueError(f"regrowth_radius={radius!r} must be >= 0")
        reward = data.APPLE_REWARD if apple_reward is None else float(apple_reward)

        flat = "".join(rows)
        apple_cells = _flat_where(rows, data.APPLE + data.EATEN_APPLE)
        num_apples = len(apple_cells)
        cell_to_apple = np.full(height * width, num_apples, np.int32)
        cell_to_apple[apple_cells] = np.arange(num_apples, dtype=np.int32)
        rc = np.stack([apple_cells // width, apple_cells % width], -1)
        d2 = ((rc[:, None, :] - rc[None, :, :]) ** 2).sum(-1)
        # The engine's disc query takes an integer radius (DMLab2D DiscFindAll).
        r2 = int(radius) ** 2
        close = (d2 <= r2) & ~np.eye(num_apples, dtype=bool)
        k = max(1, int(close.sum(1).max()) if num_apples else 1)
        neighbours = np.full((num_apples, k), num_apples, np.int32)
        for a in range(num_apples):
            idx = np.flatnonzero(close[a])
            neighbours[a, :len(idx)] = idx
        return cls(
            num_players=n, height=height, width=width, episode_length=length,
            regrowth_probabilities=probs, regrowth_radius=radius, apple_reward=reward,
            ascii_map=ascii_map,
            wall=np.array([c == data.WALL for c in flat]),
            initial_apples=np.array([c == data.APPLE for c in flat]),
            apple_cells=apple_cells, cell_to_apple=cell_to_apple, neighbours=neighbours,
            inside_spawns=inside, outer_spawns=outer,
            respawn_points=outer if len(outer) else inside, num_inside=num_inside)

    # --- states -----------------------------------------------------------------------

    def _blank_beam(self) -> tuple[jax.Array, jax.Array]:
        return (jnp.zeros((self.height, self.width), bool),
                jnp.zeros((self.num_players,), bool))

    def reset(self, key: jax.Array) -> TwinState:
        """A new episode: spawn points without replacement per group, random headings."""
        n = self.num_players
        k_in, k_out, k_orient = jax.random.split(key, 3)
        cells = []
        if self.num_inside:
            cells.append(jax.random.permutation(k_in, jnp.asarray(self.inside_spawns))
                         [:self.num_inside])
        if n > self.num_inside:
            cells.append(jax.random.permutation(k_out, jnp.asarray(self.outer_spawns))
                         [:n - self.num_inside])
        cell = jnp.concatenate(cells)
        pos = jnp.stack([cell // self.width, cell % self.width], -1).astype(jnp.int32)
        beam, fired = self._blank_beam()
        return TwinState(
            pos=pos,
            orient=jax.random.randint(k_orient, (n,), 0, 4, jnp.int32),
            alive=jnp.ones((n,), bool),
            apples=jnp.asarray(self.initial_apples.reshape(self.height, self.width)),
            zap_timer=jnp.zeros((n,), jnp.int32),
            wait=jnp.zeros((n,), jnp.int32),
            step=jnp.zeros((), jnp.int32),
            beam=beam, fired=fired)

    def state_from(self, *, pos: Any, orient: Any, alive: Any, apples: Any,
                   zap_timer: Any = None, wait: Any = None, step: int = 0) -> TwinState:
        """A state from explicit arrays, e.g. the Lua substrate's (`LuaFrame.twin_fields`)."""
        n = self.num_players
        pos = np.asarray(pos, np.int32)
        apples = np.asarray(apples, bool)
        if pos.shape != (n, 2):
            raise ValueError(f"pos has shape {pos.shape}, expected ({n}, 2)")
        if apples.shape != (self.height, self.width):
            raise ValueError(f"apples has shape {apples.shape}, expected "
                             f"({self.height}, {self.width})")
        beam, fired = self._blank_beam()
        zeros = np.zeros((n,), np.int32)
        return TwinState(
            pos=jnp.asarray(pos), orient=jnp.asarray(np.asarray(orient, np.int32)),
            alive=jnp.asarray(np.asarray(alive, bool)), apples=jnp.asarray(apples),
            zap_timer=jnp.asarray(np.asarray(zeros if zap_timer is None else zap_timer,
                                             np.int32)),
            wait=jnp.asarray(np.asarray(zeros if wait is None else wait, np.int32)),
            step=jnp.asarray(step, jnp.int32), beam=beam, fired=fired)

    # --- the step ---------------------------------------------------------------------

    def step(self, state: TwinState, actions: jax.Array,
             key: jax.Array) -> tuple[TwinState, StepOut]:
        """One step of all players; `actions` int32[n] in Melting Pot's action order."""
        k_order, k_rest = jax.random.split(key)
        order = jax.random.permutation(k_order, self.num_players)
        return self.step_in_order(state, actions, k_rest, order)

    def step_in_order(self, state: TwinState, actions: jax.Array, key: jax.Array,
                      order: jax.Array) -> tuple[TwinState, StepOut]:
        """`step` with the engine's move order given (int32[n], a permutation).

        Tests use it to check that the Lua outcome of a move conflict is one the
        twin's rule produces; `step` draws `order` uniformly.
        """
        n, h, w = self.num_players, self.height, self.width
        k_regrow, k_spawn, k_orient, k_prio = jax.random.split(key, 4)
        actions = jnp.asarray(actions, jnp.int32)
        alive0 = state.alive
        players = jnp.arange(n)
        dirs = jnp.asarray(_DIRS)

        # 1. Regrowth, before any move (queued first by the Lua update).
        live0 = state.apples.reshape(-1)
        num_apples = len(self.apple_cells)
        apple_cells = jnp.asarray(self.apple_cells)
        cell_to_apple = jnp.asarray(self.cell_to_apple)
        live_a = live0[apple_cells]
        live_a_pad = jnp.concatenate([live_a, jnp.zeros((1,), bool)])
        counts = live_a_pad[jnp.asarray(self.neighbours)].sum(-1)
        probs = jnp.asarray(self.regrowth_probabilities, jnp.float32)
        p = probs[jnp.minimum(counts, len(self.regrowth_probabilities) - 1)]
        regrow = ~live_a & (jax.random.uniform(k_regrow, (num_apples,)) < p)
        live1_a = live_a | regrow                      # apples live while moves resolve
        live1_pad = jnp.concatenate([live1_a, jnp.zeros((1,), bool)])
        regrow_pad = jnp.concatenate([regrow, jnp.zeros((1,), bool)])
        cell0 = state.pos[:, 0] * w + state.pos[:, 1]
        # An avatar standing on a regrowing apple eats it at once.
        eat_stand = alive0 & regrow_pad[cell_to_apple[cell0]]

        # 2. Moves and turns, one player after another in `order`.
        wall = jnp.asarray(self.wall)
        move_rel = jnp.asarray(_MOVE_REL)[actions]
        turn = jnp.asarray(_TURN)[actions]

        def move_one(r, carry):
            pos, orient, eat_cell = carry
            sel = players == order[r]
            me_pos = jnp.sum(jnp.where(sel[:, None], pos, 0), 0)
            me_orient = jnp.sum(jnp.where(sel, orient, 0))
            me_alive = jnp.any(sel & alive0)
            me_rel = jnp.sum(jnp.where(sel, move_rel, 0))
            me_turn = jnp.sum(jnp.where(sel, turn, 0))
            is_move = me_rel >= 0
            target = me_pos + dirs[(me_orient + me_rel) % 4]
            inb = (target[0] >= 0) & (target[0] < h) & (target[1] >= 0) & (target[1] < w)
            tcell = jnp.clip(target[0], 0, h - 1) * w + jnp.clip(target[1], 0, w - 1)
            occupied = jnp.any(alive0 & ~sel & (pos[:, 0] == target[0])
                               & (pos[:, 1] == target[1]))
            can = is_move & inb & (~me_alive | (~wall[tcell] & ~occupied))
            new_pos = jnp.where(can, target, me_pos)
            new_cell = new_pos[0] * w + new_pos[1]
            # Arriving on (or, blocked, re-entering) a cell with a live apple eats it.
            ate = me_alive & is_move & live1_pad[cell_to_apple[new_cell]]
            pos = jnp.where(sel[:, None], new_pos, pos)
            orient = jnp.where(sel, (me_orient + me_turn) % 4, orient)
            eat_cell = jnp.where(sel, jnp.where(ate, new_cell, -1), eat_cell)
            return pos, orient, eat_cell

        pos, orient, eat_cell = jax.lax.fori_loop(
            0, n, move_one, (state.pos, state.orient, jnp.full((n,), -1, jnp.int32)),
            unroll=False)
        eat_move = eat_cell >= 0
        cell1 = pos[:, 0] * w + pos[:, 1]

        # 3. Zaps, from the positions after all moves.
        cooling = alive0 & (state.zap_timer > 0)
        fired = alive0 & ~cooling & (actions == FIRE_ZAP)
        zap_timer = jnp.where(cooling, state.zap_timer - 1,
                              jnp.where(fired, data.ZAP_COOLDOWN, state.zap_timer))
        beam, hit = self._beams(pos, orient, alive0, fired)

        # 4. Respawn of players out for FRAMES_TILL_RESPAWN frames.
        due = ~alive0 & (state.wait >= data.FRAMES_TILL_RESPAWN)
        points = jnp.asarray(self.respawn_points)
        at_point = points[:, None] == cell1[None, :]
        held = jnp.any(at_point & alive0[None, :], 1)         # during the first flush
        held_after = jnp.any(at_point & (alive0 & ~hit)[None, :], 1)  # zapped ones gone
        # Points free at once come first (uniform order), then points freed by this
        # step's zaps: a teleport that finds no free point is retried by the engine
        # within the step, after the zapped avatars have left the grid.
        scores = jax.random.uniform(k_spawn, points.shape) + jnp.where(
            ~held, 2.0, jnp.where(~held_after, 1.0, -2.0))
        k = min(n, len(self.respawn_points))
        best_scores, best = jax.lax.top_k(scores, k)
        # The due players draw in a uniformly random order (the engine shuffles
        # the respawn updater's group), which matters when points run short.
        prio = jax.random.uniform(k_prio, (n,))
        rank = jnp.sum(due[None, :] & (prio[None, :] < prio[:, None]), 1)
        rank_c = jnp.clip(rank, 0, k - 1)
        respawned = due & (rank < k) & (best_scores[rank_c] >= 1.0)
        spawn_cell = points[best[rank_c]]
        spawn_pos = jnp.stack([spawn_cell // w, spawn_cell % w], -1)
        pos = jnp.where(respawned[:, None], spawn_pos, pos)
        orient = jnp.where(respawned, jax.random.randint(k_orient, (n,), 0, 4, jnp.int32),
                           orient)

        # 5. End of step: eaten apples wait, zapped players leave, respawned return.
        eaten_a = jnp.zeros((num_apples + 1,), bool)
        eaten_a = eaten_a.at[cell_to_apple[cell0]].max(eat_stand)
        eaten_a = eaten_a.at[cell_to_apple[jnp.maximum(eat_cell, 0)]].max(eat_move)
        live2_a = live1_a & ~eaten_a[:num_apples]
        apples = live0.at[apple_cells].set(live2_a).reshape(h, w)
        alive = (alive0 & ~hit) | respawned
        wait = jnp.where(alive, 0, jnp.where(alive0, 0, state.wait + 1))
        step = state.step + 1
        new_state = TwinState(pos=pos, orient=orient, alive=alive, apples=apples,
                              zap_timer=zap_timer, wait=wait, step=step, beam=beam,
                              fired=fired)
        eaten = (eat_stand.astype(jnp.float32) + eat_move.astype(jnp.float32))
        out = StepOut(
            apples_eaten=eaten,
            nearby=self.nearby(new_state),
            zapped=~alive,
            ready_to_shoot=ready_to_shoot(alive, zap_timer),
            num_apples=live2_a.sum().astype(jnp.int32),
            done=step >= self.episode_length)
        return new_state, out

    def _beams(self, pos: jax.Array, orient: jax.Array, alive: jax.Array,
               fired: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Beam cells drawn (bool[H, W]) and who is hit (bool[n]) by the fired zaps.

        Lines as in DMLab2D `Grid::HitBeamActual`: per side r = 1..R the line from
        the side cell r, BEAM_LENGTH - r + 1 long (a side stops widening once a
        line is blocked at its first cell), then the centre line from the cell
        ahead, BEAM_LENGTH long. A line stops at the first cell off the grid,
        with a wall or with a live avatar (hit); the stopping cell is not drawn.
        """
        h, w = self.height, self.width
        length, radius = data.BEAM_LENGTH, data.BEAM_RADIUS
        kmax = length + 1
        # Static line layout: (side offset, first step ahead, cells) per line.
        lines = [(side * r, 0, length - r + 1) for side in (-1, 1)
                 for r in range(1, radius + 1)] + [(0, 1, length)]
        side_off = np.array([s for s, _, _ in lines], np.int32)            # [L]
        ahead = np.array([[k0 + k for k in range(kmax)] for _, k0, _ in lines], np.int32)
        valid = np.array([[k < m for k in range(kmax)] for _, _, m in lines])  # [L, K]
        dirs = jnp.asarray(_DIRS)
        fwd = dirs[orient]                        # [n, 2]
        right = dirs[(orient + 1) % 4]            # [n, 2]
        cells = (pos[:, None, None, :] + jnp.asarray(side_off)[None, :, None, None]
                 * right[:, None, None, :] + jnp.asarray(ahead)[None, :, :, None]
                 * fwd[:, None, None, :])         # [n, L, K, 2]
        inb = ((cells[..., 0] >= 0) & (cells[..., 0] < h) & (cells[..., 1] >= 0)
               & (cells[..., 1] < w))
        flat = jnp.clip(cells[..., 0], 0, h - 1) * w + jnp.clip(cells[..., 1], 0, w - 1)
        at = ((cells[..., None, 0] == pos[:, 0]) & (cells[..., None, 1] == pos[:, 1])
              & alive)                             # [n, L, K, n]: avatar j in the cell
        avatar_here = jnp.any(at, -1)
        block = jnp.asarray(valid) & (~inb | jnp.asarray(self.wall)[flat] | avatar_here)
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
        hit = jnp.any(at & (live & first_block)[..., None], (0, 1, 2))
        drawn = (live & reached).reshape(-1)
        beam = jnp.zeros((h * w,), bool).at[flat.reshape(-1)].max(drawn).reshape(h, w)
        return beam, hit

    def nearby(self, state: TwinState) -> jax.Array:
        """bool[n, n]: j inside i's view window (Lua `NearbyPlayersObservation`)."""
        return nearby(state.pos, state.orient, state.alive)


def ready_to_shoot(alive: jax.Array, zap_timer: jax.Array) -> jax.Array:
    """Melting Pot `Zapper:readyToShoot`: max(1 - timer / cooldown, 0), 0 when out."""
    value = jnp.maximum(1.0 - zap_timer.astype(jnp.float32) / data.ZAP_COOLDOWN, 0.0)
    return jnp.where(alive, value, 0.0).astype(jnp.float32)


def nearby(pos: jax.Array, orient: jax.Array, alive: jax.Array) -> jax.Array:
    """bool[n, n]: live j inside live i's window (9 ahead, 1 behind, 5 each side)."""
    dirs = jnp.asarray(_DIRS)
    d = pos[None, :, :] - pos[:, None, :]                  # [i, j, 2] offset of j from i
    fwd = jnp.sum(d * dirs[orient][:, None, :], -1)
    right = jnp.sum(d * dirs[(orient + 1) % 4][:, None, :], -1)
    inside = ((fwd >= -data.VIEW_BACKWARD) & (fwd <= data.VIEW_FORWARD)
              & (right >= -data.VIEW_LEFT) & (right <= data.VIEW_RIGHT))
    n = pos.shape[0]
    return inside & alive[:, None] & alive[None, :] & ~jnp.eye(n, dtype=bool)
