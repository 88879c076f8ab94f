"""Test helper: run the Lua substrate and read its full state after every step.

The JAX twin (`sed_meltingpot.twin`) is proven equal to the Lua substrate by
replaying the same actions in both and comparing, step by step, everything a
player or the principal can see. This module is the Lua side of that
comparison: it builds the substrate with `debug_observations=True`, which adds
per player POSITION, ORIENTATION, ZAP_TIMER (the zapper's cooldown counter)
and WAIT_FRAMES (frames in the current avatar state), and the global
`WORLD.APPLES` (live apple per cell), and converts each timestep into a
`LuaFrame` of numpy arrays in the twin's conventions:

* positions are (row, col) with row 0 the map's top row (Lua reports (x, y));
* orientation 0 N, 1 E, 2 S, 3 W (Melting Pot's ORIENTATION coding);
* `alive` is `ZAPPED == 0`.

Usage::

    from tests.lua_reference import LuaReference
    with LuaReference("apple_picking", seed=3, regrowth_probabilities=(0,) * 4) as lua:
        frame = lua.reset()
        state = env.state_from(**frame.twin_fields())   # start the twin here
        frame = lua.step(actions)                        # actions: ints, one per player

`overrides` are `sed_meltingpot.game.substrate.get_config` overrides (num_players,
ascii_map, episode_length, regrowth_probabilities, ...). A `LuaFrame` also
carries the observations the render tests compare (`rgb`, `world_rgb`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from sed_meltingpot.game import substrate


@dataclasses.dataclass(frozen=True)
class LuaFrame:
    """The Lua substrate's state and observations after `step` steps (0 = reset)."""

    step: int
    pos: np.ndarray             # int32[n, 2] (row, col); a zapped avatar's is its hidden piece's
    orient: np.ndarray          # int32[n] 0 N, 1 E, 2 S, 3 W
    alive: np.ndarray           # bool[n] (ZAPPED == 0)
    apples: np.ndarray          # bool[H, W] live apple per cell (WORLD.APPLES)
    num_apples: int             # WORLD.NUM_APPLES
    apples_eaten: np.ndarray    # float64[n] this step (APPLES_EATEN)
    reward: np.ndarray          # float64[n] this step
    zapped: np.ndarray          # bool[n] (ZAPPED)
    ready_to_shoot: np.ndarray  # float64[n] (READY_TO_SHOOT)
    nearby: np.ndarray          # bool[n, n] (NEARBY rows)
    zap_timer: np.ndarray       # int32[n] Zapper cooldown counter (0 = may fire)
    wait_frames: np.ndarray     # int32[n] frames in the current state (engine count)
    rgb: np.ndarray             # uint8[n, 88, 88, 3] (RGB)
    world_rgb: np.ndarray       # uint8[8H, 8W, 3] (WORLD.RGB)

    def twin_fields(self) -> dict[str, Any]:
        """Keyword arguments for `TwinEnv.state_from` (the twin's state at this frame).

        `wait` is the frames a zapped player has spent out of play (the count the
        respawn rule compares with FRAMES_TILL_RESPAWN); 0 for live players.
        """
        return dict(
            pos=self.pos, orient=self.orient, alive=self.alive, apples=self.apples,
            zap_timer=self.zap_timer, wait=np.where(self.alive, 0, self.wait_frames),
            step=self.step)


def frame_from_timestep(ts, step: int) -> LuaFrame:
    """Converts a Melting Pot timestep of a debug-observation substrate to a LuaFrame."""
    obs = ts.observation
    n = len(obs)

    def stack(key: str, dtype) -> np.ndarray:
        return np.stack([np.asarray(o[key]) for o in obs]).astype(dtype)

    xy = stack("POSITION", np.int32)
    zapped = stack("ZAPPED", np.float64) != 0
    return LuaFrame(
        step=step,
        pos=xy[:, ::-1].copy(),
        orient=stack("ORIENTATION", np.int32),
        alive=~zapped,
        apples=np.asarray(obs[0]["WORLD.APPLES"]) != 0,
        num_apples=int(np.asarray(obs[0]["WORLD.NUM_APPLES"])),
        apples_eaten=stack("APPLES_EATEN", np.float64),
        reward=np.asarray(ts.reward, dtype=np.float64).reshape(n),
        zapped=zapped,
        ready_to_shoot=stack("READY_TO_SHOOT", np.float64),
        nearby=stack("NEARBY", np.float64) != 0,
        zap_timer=stack("ZAP_TIMER", np.int32),
        wait_frames=stack("WAIT_FRAMES", np.int32),
        rgb=stack("RGB", np.uint8),
        world_rgb=np.asarray(obs[0]["WORLD.RGB"]).copy(),
    )


class LuaReference:
    """The Lua substrate with debug observations, stepped with plain int actions."""

    def __init__(self, name: str = "apple_picking", *, seed: int = 0, **overrides: Any):
        overrides["debug_observations"] = True
        self.config = substrate.get_config(name, **overrides)
        self.num_players = int(self.config.num_players)
        self._env = substrate.build_from_config(self.config, seed=seed)
        self._step = 0

    def reset(self) -> LuaFrame:
        self._step = 0
        return frame_from_timestep(self._env.reset(), 0)

    def step(self, actions: Sequence[int]) -> LuaFrame:
        if len(actions) != self.num_players:
            raise ValueError(f"got {len(actions)} actions for {self.num_players} players")
        self._step += 1
        return frame_from_timestep(self._env.step([int(a) for a in actions]), self._step)

    def close(self) -> None:
        self._env.close()

    def __enter__(self) -> LuaReference:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def rollout(actions: np.ndarray, name: str = "apple_picking", *, seed: int = 0,
            **overrides: Any) -> list[LuaFrame]:
    """The reset frame and one frame per row of `actions` (int[steps, n])."""
    with LuaReference(name, seed=seed, num_players=int(np.shape(actions)[1]),
                      **overrides) as lua:
        frames = [lua.reset()]
        frames += [lua.step(row) for row in np.asarray(actions)]
    return frames
