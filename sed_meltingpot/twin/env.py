"""A pure-JAX twin of the Lua substrate `apple_picking` (and `apple_picking__large`).

`TwinEnv.reset`/`TwinEnv.step` are pure functions of fixed-shape arrays, so a
batch of games is `jax.vmap(env.step)` and a rollout is `jax.lax.scan`. The
rules are those of the Lua level (`lua/levels/apple_picking`), Melting Pot's
Commons Harvest avatar and zapper (`meltingpot/lua/modules/avatar_library.lua`)
and the DMLab2D engine that runs them (`dmlab2d/lib/system/grid_world/grid.cc`).
One step of the engine, in its order; `TwinEnv.step_in_order` runs it as a
short sequence of pure functions, one per rule (named in brackets, in
`twin/world_rules.py`), as a Gymnax `step_env` calls its helpers:

1. Lua `update` [`regrow_apples`, `eat_underfoot`]: every eaten apple regrows
   with probability `regrowth_probabilities[min(k, last)]`, k = live apples
   within `regrowth_radius` (L2 disc, own cell excluded) at the start of the
   step. The engine queues these state changes first, so they are applied
   before any move: an avatar standing on a regrowing cell eats the apple at once.
2. Moves and turns (updater priority 150) [`turn_avatars`, `move_avatars`,
   `eat_on_arrival`], one avatar after another in a uniformly random order (the
   engine shuffles the updater's group). A move is egocentric
   (forward/backward/left/right of the facing direction) and fails off the
   grid, into a wall or into a cell that a live avatar holds at that moment
   (so a chain of avatars moving in line depends on the order).
   An avatar that enters a cell with a live apple eats it (+1); a blocked
   move re-enters the avatar's own cell (engine behaviour), which eats an
   apple that regrew under it this step a second time. The eaten apple turns
   to "waiting" only at the end of the step. Zapped avatars keep turning and
   moving as hidden pieces (in bounds, through anything), as the engine does.
3. Zaps (priority 140) [`fire_zappers`, `zap_beams`], for live avatars: a
   cooling timer > 0 counts down instead of firing; otherwise FIRE_ZAP fires
   and sets it to ZAP_COOLDOWN. The beam (DMLab2D `HitBeam`, length 3,
   radius 1) covers the 3 cells ahead and, on each side, the side cell and the
   2 ahead of it; each of its lines stops at the first wall, map edge or live
   avatar, and such an avatar is zapped (out of play from the end of the
   step). Beams are resolved after all moves and before anyone leaves the
   grid, so their order does not matter.
4. Respawn (priority 135) [`respawn_scores`, `respawn_zapped`]: an avatar out
   of play for FRAMES_TILL_RESPAWN frames (it was zapped 5 steps earlier)
   reappears on a uniformly random respawn point that no avatar holds after
   this step's moves, facing a uniformly random direction; several respawning
   players take distinct points, drawn one after another in a random order. A
   player that finds no free point gets one freed by this step's zaps if any
   (the engine retries the teleport within the step after the zapped avatars
   left), else it waits and tries again next step.
5. End of step [`leave_eaten`, `leave_and_return`, `tick_clock`]: eaten apples
   turn to "waiting", zapped avatars leave play, respawned ones return, and the
   episode clock advances.

Observations derived from the state (StepOut, [`observe`] here) follow the Lua
components: APPLES_EATEN, NEARBY (view window 9 ahead, 1 behind, 5 to each
side), ZAPPED, READY_TO_SHOOT = max(1 - timer / ZAP_COOLDOWN, 0) for live avatars.

Scale: `map="generated"` is a map sized from the number of players (tiled
Commons Harvest patches, `twin/generated_map.py`, 1 to 4096 players), and
`locality` says how the rules find who stands where: "pairwise" compares every
pair of players (O(n^2) per step; NEARBY a bool[n, n] matrix), "grid" looks
cells up in a table (`twin/cell_grid.py`, O(n); NEARBY as `rewards.SeenLists`).
Both give the same outcome; the default picks the grid from
`cell_grid.GRID_FROM_PLAYERS` players, so the paper's maps stay pairwise.

Engine-random decisions and the rule implemented for each (same distribution,
different random numbers, so tests compare them distributionally):
* the order of moves: a uniform random permutation of the players;
* initial spawn points: uniform without replacement within each group (first
  NUM_INSIDE_SPAWNS players on `Q`, the rest on `P`), uniform orientation;
* respawn points: uniform over free respawn points, distinct within a step
  (top-k of uniform scores, handed out in a uniformly random order of the
  due players), uniform orientation;
* regrowth: one Bernoulli per waiting apple per step.

This module imports only jax, numpy, flax, the meltingpot-free
`sed_meltingpot.substrates.apple_picking_data`, the static map layout
(`twin/world_layout.py`, `twin/generated_map.py`, numpy) and the step's rules
(`twin/world_rules.py`, `twin/cell_grid.py`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from sed_meltingpot.core.rewards import SeenLists
from sed_meltingpot.substrates import apple_picking_data as data
from sed_meltingpot.twin import cell_grid, generated_map
from sed_meltingpot.twin import world_rules as rules
from sed_meltingpot.twin.world_layout import apple_tables, flat_where, parse_map

# Kept under their old names for anything that imported them from here.
_parse_map, _flat_where, FIRE_ZAP = parse_map, flat_where, rules.FIRE_ZAP

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
    seen by no one); with `TwinEnv.locality == "grid"` the same as
    `rewards.SeenLists` (int32[n, 120]). zapped: bool[n], out of play after this step.
    ready_to_shoot: float32[n]. num_apples: int32, live apples. done: bool,
    step == episode_length.
    """

    apples_eaten: jax.Array
    nearby: jax.Array
    zapped: jax.Array
    ready_to_shoot: jax.Array
    num_apples: jax.Array
    done: jax.Array



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
    locality: str = "pairwise"  # who-is-where queries: "pairwise" or "grid" (cell_grid.py)

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
        locality: str | None = None,
    ) -> TwinEnv:
        """The twin of `sed_meltingpot.game.substrate.build(substrate, **overrides)`.

        `map` is "default", "large", "generated" (sized from `num_players`, twin only)
        or an ASCII map; None keeps the substrate's. `locality` is "pairwise", "grid"
        or None (`cell_grid.choose_locality`: the grid from GRID_FROM_PLAYERS players).
        Raises ValueError naming a bad argument, its value and the allowed range.
        """
        if substrate not in _SUBSTRATE_DEFAULTS:
            raise ValueError(f"Unknown substrate {substrate!r}; available: "
                             f"{', '.join(_SUBSTRATE_DEFAULTS)}")
        defaults = _SUBSTRATE_DEFAULTS[substrate]
        map = map if map is not None else defaults.get("map", "default")
        n = num_players if num_players is not None else defaults.get(
            "num_players", data.NUM_PLAYERS)
        if map == generated_map.GENERATED:
            ascii_map = generated_map.generated_map(generated_map.check_num_players(n))
        else:
            ascii_map = {"default": data.ASCII_MAP, "large": data.ASCII_MAP_LARGE}.get(map, map)
            if map not in ("default", "large") and "\n" not in map:
                raise ValueError(f"map={map!r} is not 'default', 'large', "
                                 f"'{generated_map.GENERATED}' or an ASCII map")
        rows = parse_map(ascii_map)
        height, width = len(rows), len(rows[0])
        inside, outer = flat_where(rows, data.INSIDE_SPAWN), flat_where(rows, data.SPAWN)
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
        apple_cells, cell_to_apple, neighbours = apple_tables(rows, radius)
        return cls(
            num_players=n, height=height, width=width, episode_length=length,
            regrowth_probabilities=probs, regrowth_radius=radius, apple_reward=reward,
            ascii_map=ascii_map,
            wall=np.array([c == data.WALL for c in flat]),
            initial_apples=np.array([c == data.APPLE for c in flat]),
            apple_cells=apple_cells, cell_to_apple=cell_to_apple, neighbours=neighbours,
            inside_spawns=inside, outer_spawns=outer,
            respawn_points=outer if len(outer) else inside, num_inside=num_inside,
            locality=cell_grid.choose_locality(n, locality))

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
        twin's rule produces; `step` draws `order` uniformly. The numbered parts
        are the engine's order within a step (module docstring).
        """
        h, w = self.height, self.width
        k_regrow, k_spawn, k_orient, k_prio = jax.random.split(key, 4)
        actions = jnp.asarray(actions, jnp.int32)
        alive, cell = state.alive, rules.cells_of(state.pos, w)
        live = state.apples.reshape(-1)[jnp.asarray(self.apple_cells)]
        # 1. Regrowth, before any move (queued first by the Lua update).
        regrown = rules.regrow_apples(live, k_regrow, self.neighbours,
                                      self.regrowth_probabilities)
        ate_standing = rules.eat_underfoot(cell, alive, regrown, self.cell_to_apple)
        live = live | regrown                        # apples live while moves resolve
        # 2. Turns, and moves one player after another in `order`.
        orient = rules.turn_avatars(state.orient, actions)
        pos = rules.move_avatars(state.pos, state.orient, alive, actions, order, self.wall,
                                 h, w, self.locality)
        moved_cell = rules.cells_of(pos, w)
        ate_moving = rules.eat_on_arrival(moved_cell, alive, actions, live, self.cell_to_apple)
        # 3. Zaps, from the positions after all moves.
        fired, zap_timer = rules.fire_zappers(alive, state.zap_timer, actions)
        beam, hit = rules.zap_beams(pos, orient, alive, fired, self.wall, h, w, self.locality)
        # 4. Respawn of players out for FRAMES_TILL_RESPAWN frames.
        respawned, pos, orient = rules.respawn_zapped(
            pos, orient, alive, state.wait, hit, self.respawn_points, w,
            k_spawn=k_spawn, k_prio=k_prio, k_orient=k_orient, locality=self.locality,
            height=h)
        # 5. End of step: eaten apples wait, zapped players leave, respawned return.
        apples, live = rules.leave_eaten(
            state.apples, live, ((cell, ate_standing), (moved_cell, ate_moving)),
            self.apple_cells, self.cell_to_apple)
        alive, wait = rules.leave_and_return(alive, state.wait, hit, respawned)
        step, done = rules.tick_clock(state.step, self.episode_length)
        new_state = TwinState(pos=pos, orient=orient, alive=alive, apples=apples,
                              zap_timer=zap_timer, wait=wait, step=step, beam=beam,
                              fired=fired)
        seen = (cell_grid.seen_lists(new_state.pos, new_state.orient, new_state.alive, h, w)
                if self.locality == "grid" else None)
        return new_state, observe(new_state, ate_standing, ate_moving, live, done, seen)

    def nearby(self, state: TwinState) -> jax.Array:
        """bool[n, n]: j inside i's view window (Lua `NearbyPlayersObservation`), the
        direct form whatever the locality (StepOut.nearby is the lists on the grid)."""
        return nearby(state.pos, state.orient, state.alive)


# --- observations ----------------------------------------------------------------------


def observe(state: TwinState, ate_standing: jax.Array, ate_moving: jax.Array,
            live: jax.Array, done: jax.Array, seen: SeenLists | None = None) -> StepOut:
    """The Lua observations after the step: APPLES_EATEN, NEARBY, ZAPPED, READY_TO_SHOOT.
    NEARBY is `seen` when given (the grid's lists), else the direct matrix."""
    return StepOut(
        apples_eaten=ate_standing.astype(jnp.float32) + ate_moving.astype(jnp.float32),
        nearby=nearby(state.pos, state.orient, state.alive) if seen is None else seen,
        zapped=~state.alive,
        ready_to_shoot=ready_to_shoot(state.alive, state.zap_timer),
        num_apples=live.sum().astype(jnp.int32),
        done=done)


def ready_to_shoot(alive: jax.Array, zap_timer: jax.Array) -> jax.Array:
    """Melting Pot `Zapper:readyToShoot`: max(1 - timer / cooldown, 0), 0 when out."""
    value = jnp.maximum(1.0 - zap_timer.astype(jnp.float32) / data.ZAP_COOLDOWN, 0.0)
    return jnp.where(alive, value, 0.0).astype(jnp.float32)


def nearby(pos: jax.Array, orient: jax.Array, alive: jax.Array) -> jax.Array:
    """bool[n, n]: live j inside live i's window (9 ahead, 1 behind, 5 each side)."""
    dirs = jnp.asarray(rules.DIRS)
    d = pos[None, :, :] - pos[:, None, :]                  # [i, j, 2] offset of j from i
    fwd = jnp.sum(d * dirs[orient][:, None, :], -1)
    right = jnp.sum(d * dirs[(orient + 1) % 4][:, None, :], -1)
    inside = ((fwd >= -data.VIEW_BACKWARD) & (fwd <= data.VIEW_FORWARD)
              & (right >= -data.VIEW_LEFT) & (right <= data.VIEW_RIGHT))
    n = pos.shape[0]
    return inside & alive[:, None] & alive[None, :] & ~jnp.eye(n, dtype=bool)
