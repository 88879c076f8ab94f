"""A small stand-in for `sed_meltingpot.twin.sed.SEDTwin` with the same interface (a
`training.jax.protocol.TrainableGame`) and observation layout (its `Obs`), for testing the PPO
machinery alone.

Rules (chosen so that learning has an obvious signal): a player earns 1 when it plays
action 1 ("forward"), 0 otherwise; the principal earns, per step, the players' mean
reward times (1 - |rate of bracket 0 - 0.5|). Images are random uint8 noise, features
hold [sigma, rates, period position, 1]. Nothing of the real game is modelled.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from sed_meltingpot.game.config import GameConfig


class Obs(NamedTuple):
    player_image: jax.Array
    player_features: jax.Array
    principal_image: jax.Array
    principal_features: jax.Array


class ToyState(NamedTuple):
    step: jax.Array
    rates: jax.Array
    selfishness: jax.Array
    due: jax.Array
    round_apples: jax.Array
    key: jax.Array


class ToyGame:
    def __init__(self, game: GameConfig, obs_mode: str = "tiles", frame_stack: int = 1,
                 world_tiles: tuple[int, int] = (6, 8)) -> None:
        self.config = game
        self.ppt = 1 if obs_mode == "tiles" else 8
        self.frame_stack = frame_stack
        self.world_tiles = world_tiles

    def _obs(self, state: ToyState) -> Obs:
        n, b = self.config.num_players, self.config.num_brackets
        k1, k2 = jax.random.split(state.key)
        v = 11 * self.ppt
        h, w = self.world_tiles
        position = (state.step % self.config.tax_period) / self.config.tax_period
        features = jnp.concatenate([
            state.selfishness[:, None], jnp.broadcast_to(state.rates, (n, b)),
            jnp.full((n, 1), position), jnp.ones((n, 1))], axis=1).astype(jnp.float32)
        pf = jnp.concatenate([jnp.log1p(state.round_apples), jnp.log1p(state.round_apples),
                              jnp.array([0.5]), state.rates, jnp.array([0.0])])
        return Obs(
            jax.random.randint(k1, (n, v, v, 3 * self.frame_stack), 0, 256).astype(jnp.uint8),
            features,
            jax.random.randint(k2, (h * self.ppt, w * self.ppt, 3), 0, 256).astype(jnp.uint8),
            pf.astype(jnp.float32))

    def reset(self, key: jax.Array, selfishness: jax.Array, fixed_eta=None
              ) -> tuple[ToyState, Obs]:
        del fixed_eta  # the toy game has no vote
        n, b = self.config.num_players, self.config.num_brackets
        state = ToyState(jnp.int32(0), jnp.zeros(b, jnp.float32),
                         jnp.asarray(selfishness, jnp.float32), jnp.bool_(True),
                         jnp.zeros(n, jnp.float32), key)
        return state, self._obs(state)

    def principal_due(self, state: ToyState) -> jax.Array:
        return state.due

    def set_rates(self, state: ToyState, rates: jax.Array, tax_cap: Any
                  ) -> tuple[ToyState, Obs]:
        """The rates as given, times the cap (no projection, no check that it is due)."""
        state = state._replace(rates=jnp.asarray(rates, jnp.float32) * tax_cap,
                               due=jnp.bool_(False))
        return state, self._obs(state)

    def set_rate_levels(self, state: ToyState, levels: jax.Array, tax_cap: Any
                        ) -> tuple[ToyState, Obs]:
        return self.set_rates(state, jnp.asarray(self.config.rate_levels, jnp.float32)[levels],
                              tax_cap)

    def step(self, state: ToyState, actions: jax.Array, key: jax.Array):
        g = self.config
        apples = (actions == 1).astype(jnp.float32)
        step = state.step + 1
        period_end = step % g.tax_period == 0
        done = step >= g.episode_length
        round_apples = state.round_apples + apples
        principal_reward = apples.mean() * (1.0 - jnp.abs(state.rates[0] - 0.5))
        state = state._replace(step=step, due=period_end & ~done, round_apples=round_apples,
                               key=key)
        info = {"apples": apples, "zapped": actions == 7, "r_tax": apples, "rates": state.rates,
                "eta": jnp.float32(0.5), "objective": round_apples.sum(),
                "period_end": period_end, "round_end": done,
                "tax_revenue": jnp.float32(0.0)}
        return state, self._obs(state), apples, principal_reward, done, info

    def episode_metrics(self, state: ToyState) -> dict[str, jax.Array]:
        """SEDTwin.episode_metrics' keys; the toy's numbers are simple totals."""
        g = self.config
        totals = state.round_apples
        periods = g.episode_length // g.tax_period
        f = jnp.float32
        return {
            "steps": state.step, "apples_per_player": totals, "income_per_player": totals,
            "objective": totals.sum(), "eta": f(0.5), "utilitarian": totals.sum(),
            "egalitarian": totals.min(), "nash_welfare": totals.sum(),
            "productivity": totals.sum(), "equality": f(1.0), "income_equality": f(1.0),
            "egalitarian_income": totals.min(),
            "sustainability": f(state.step) / 2, "peace": f(1.0), "tax_revenue": f(0.0),
            "period_rates": jnp.broadcast_to(state.rates, (periods, g.num_brackets)),
            "mean_rates": state.rates, "principal_return": totals.mean(), "tax_cap": f(1.0),
        }
