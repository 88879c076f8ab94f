"""Memory per game against the number of players (`scripts/benchmark_scale.py`).

What one game holds on the device, read from the pytrees' shapes and dtypes (bytes =
elements x item size of every leaf) under `jax.eval_shape`, so nothing is computed or
allocated and 1,024 players cost no more to count than 7:

* state: the SED twin's `GameState` of one game (the world, the SED layer, the players'
  frame stacks) after a reset;
* observations: its `Obs` (every player's stacked view, features, the principal's image
  and features);
* the players' rollout row: the bytes of the players' transitions of one iteration
  (image, features, action, log-prob, value, reward, and the game's done flag, which
  its players share) over their rows (one per player and game step), as the fast
  preset's training keeps them (uint8 views until the network).

The fast preset's observations: 11 x 11 tiles per view (one pixel per tile), 4 frames.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass(frozen=True)
class MemoryRow:
    players: int
    map_name: str
    state_bytes: int
    obs_bytes: int
    rollout_row_bytes: float

    @property
    def game_bytes(self) -> int:
        """One game's state and observations."""
        return self.state_bytes + self.obs_bytes

    @property
    def rollout_bytes_per_game_step(self) -> float:
        """The players' transitions of one game step: a row per player."""
        return self.rollout_row_bytes * self.players

    def record(self) -> dict[str, Any]:
        return {"section": "memory", **dataclasses.asdict(self),
                "game_bytes": self.game_bytes,
                "rollout_bytes_per_game_step": self.rollout_bytes_per_game_step}


def tree_bytes(tree: Any) -> int:
    """Bytes of every leaf of a pytree of arrays or `jax.ShapeDtypeStruct`s."""
    import jax
    import numpy as np

    return sum(math.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize
               for leaf in jax.tree_util.tree_leaves(tree))


def memory_row(players: int) -> MemoryRow:
    """The figures of one game of `players` with the fast preset (`scale_benchmark`'s
    training config: its map, no tax, one game of one tax period: the row's bytes do not
    depend on how many)."""
    import jax
    import jax.numpy as jnp

    from sed_meltingpot.game.config import GameConfig
    from sed_meltingpot.perf.scale_benchmark import training_config
    from sed_meltingpot.training.jax import ppo

    config = training_config(players, 1, GameConfig().tax_period)
    fns = ppo.make_functions(config)
    types = jnp.zeros(players, jnp.float32)
    key = jax.random.PRNGKey(0)
    state, obs = jax.eval_shape(fns.game.reset, key, types)
    runner = jax.eval_shape(fns.init, key, types)
    _, roll = jax.eval_shape(fns.stages.rollout, runner, key, jnp.float32(1.0))
    rows = config.players_rows
    return MemoryRow(players, config.game.map, tree_bytes(state), tree_bytes(obs),
                     tree_bytes(roll["players"]) / rows)
