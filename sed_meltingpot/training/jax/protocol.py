"""The game interface the jax trainer drives (`training/jax/ppo.py`): `TrainableGame`.

`SEDTwin` (twin/sed.py) is the game; tests train on a stand-in (tests/twin_toy_game.py)
with the same members. Every method is pure and traced under `jax.vmap` over games, so
the state is any pytree the game chooses; observations are its `Obs` (`GameObs`'s four
fields). `make_functions` checks a game against the protocol (`check_trainable`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax


class GameObs(Protocol):
    """One game's observations (SEDTwin's `Obs`): the players' (n, ...) and the
    principal's (its turn's) images (uint8) and features (f32)."""

    player_image: jax.Array
    player_features: jax.Array
    principal_image: jax.Array
    principal_features: jax.Array


@runtime_checkable
class TrainableGame(Protocol):
    """What `training/jax/ppo.py` calls on a game (one game; the trainer vmaps it)."""

    def reset(self, key: jax.Array, selfishness: Any, fixed_eta: Any = None
              ) -> tuple[Any, GameObs]:
        """A new episode: types f32[n]; `fixed_eta` f32 (NaN: the players vote)."""
        ...

    def step(self, state: Any, actions: jax.Array, key: jax.Array
             ) -> tuple[Any, GameObs, jax.Array, jax.Array, jax.Array, dict[str, jax.Array]]:
        """All players act: (state, obs, rewards f32[n], principal_reward f32, done bool,
        info), info holding at least "round_end" (bool) and "eta" (f32, the round's; read
        by the recipe's per-eta treatments); no reset after done."""
        ...

    def set_rates(self, state: Any, rates: Any, tax_cap: Any) -> tuple[Any, GameObs]:
        """The principal's rates f32[B] for the period now starting, times the cap."""
        ...

    def set_rate_levels(self, state: Any, levels: Any, tax_cap: Any) -> tuple[Any, GameObs]:
        """`set_rates` with one level index int32[B] per bracket (GameConfig.rate_levels)."""
        ...

    def episode_metrics(self, state: Any) -> dict[str, jax.Array]:
        """The episode's figures (SEDGame.episode_metrics' keys), read where it ended."""
        ...


MEMBERS = tuple(name for name, value in vars(TrainableGame).items()
                if callable(value) and not name.startswith("_"))


def check_trainable(game: Any) -> TrainableGame:
    """`game` if it has every `TrainableGame` method, else a TypeError naming those missing."""
    missing = [m for m in MEMBERS if not callable(getattr(game, m, None))]
    if missing:
        raise TypeError(f"{type(game).__name__} is not a TrainableGame (training/jax/protocol.py): "
                        f"it lacks {', '.join(missing)}")
    return game
