"""A synthetic game with a lagged lever, for the Stackelberg search's tests (issue 30).

A `training.jax.protocol.TrainableGame` like tests/twin_toy_game.py, built so that the
best tax shows only once the players have learned under it, while a principal that
looks at frozen players is pushed the other way.

Rules (n players; the tax rate r is bracket 0's rate, the other brackets are ignored):
  action 1, "harvest": the player's own income +1;
  action 2, "sustain": the total output +s, shared equally (every income +s/n);
  any other action: nothing.
  Each player's reward is its post-tax income with full redistribution of the tax:
  (1 - r) x_i + r mean(x). The principal's objective W (the metrics' "objective", its
  reward per step) is the total output minus a collection cost c * r per step.
The players observe neither the rates nor each other (all-zero images; features: the
position in the period and a constant), so the rate acts on them only through what
they learn from their rewards.

Why the lever lags: sustaining pays a player s/n and harvesting (1 - r) + r/n, so
sustain pays more only above r* = (1 - s/n) / (1 - 1/n) (0.7 with the defaults n = 2,
s = 1.3). With the players frozen, W depends on r only through -c r: the frozen-players
gradient points to no tax. Once they have learned under r = 1 every player sustains and
W = n s - c per step (2.4), the optimum; under any r < r* they learn to harvest and
W = n - c r (2 at r = 0, 1.9 at r = 0.5).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from sed_meltingpot.game.config import GameConfig

HARVEST, SUSTAIN = 1, 2


class Obs(NamedTuple):
    player_image: jax.Array
    player_features: jax.Array
    principal_image: jax.Array
    principal_features: jax.Array


class LeverState(NamedTuple):
    step: jax.Array  # int32
    rate: jax.Array  # f32: bracket 0's rate times the cap, this period's
    rates: jax.Array  # f32[B]: the period's rates (recorded for the metrics)
    income: jax.Array  # f32[n]: pre-tax income so far this episode
    output: jax.Array  # f32: total output so far
    cost: jax.Array  # f32: collection cost so far


class LaggedLeverGame:
    def __init__(self, game: GameConfig, sustain_output: float = 1.3,
                 collection_cost: float = 0.2) -> None:
        self.config = game
        self.s = float(sustain_output)
        self.c = float(collection_cost)

    @property
    def threshold(self) -> float:
        """r*: the rate above which sustaining pays a player more than harvesting."""
        n = self.config.num_players
        return (1.0 - self.s / n) / (1.0 - 1.0 / n)

    def _obs(self, state: LeverState) -> Obs:
        g = self.config
        n = g.num_players
        position = (state.step % g.tax_period) / g.tax_period
        features = jnp.stack([jnp.full(n, position), jnp.ones(n)], axis=1).astype(jnp.float32)
        principal = jnp.concatenate([jnp.stack([state.output, state.cost]), state.rates])
        return Obs(jnp.zeros((n, 11, 11, 1), jnp.uint8), features,
                   jnp.zeros((6, 8, 3), jnp.uint8), principal.astype(jnp.float32))

    def reset(self, key: jax.Array, selfishness: Any, fixed_eta: Any = None
              ) -> tuple[LeverState, Obs]:
        del key, selfishness, fixed_eta  # nothing random, no types, no vote
        g = self.config
        f = jnp.float32
        state = LeverState(jnp.int32(0), f(0.0), jnp.zeros(g.num_brackets, f),
                           jnp.zeros(g.num_players, f), f(0.0), f(0.0))
        return state, self._obs(state)

    def set_rates(self, state: LeverState, rates: Any, tax_cap: Any
                  ) -> tuple[LeverState, Obs]:
        rates = jnp.asarray(rates, jnp.float32) * tax_cap
        state = state._replace(rate=rates[0], rates=rates)
        return state, self._obs(state)

    def set_rate_levels(self, state: LeverState, levels: Any, tax_cap: Any
                        ) -> tuple[LeverState, Obs]:
        return self.set_rates(state, jnp.asarray(self.config.rate_levels, jnp.float32)[levels],
                              tax_cap)

    def step(self, state: LeverState, actions: jax.Array, key: jax.Array):
        del key
        g = self.config
        n, r = g.num_players, state.rate
        harvest = (actions == HARVEST).astype(jnp.float32)
        sustainers = (actions == SUSTAIN).astype(jnp.float32).sum()
        income = harvest + self.s * sustainers / n  # pre-tax, this step
        rewards = (1.0 - r) * income + r * income.mean()
        w = income.sum() - self.c * r  # the principal's objective, this step
        step = state.step + 1
        done = step >= g.episode_length
        state = state._replace(step=step, income=state.income + income,
                               output=state.output + income.sum(), cost=state.cost + self.c * r)
        info = {"round_end": done, "eta": jnp.float32(1.0), "objective": state.output - state.cost}
        return state, self._obs(state), rewards, w, done, info

    def episode_metrics(self, state: LeverState) -> dict[str, jax.Array]:
        """The keys the trainer's books read; "objective" is the episode's W."""
        g = self.config
        f = jnp.float32
        periods = g.episode_length // g.tax_period
        w = state.output - state.cost
        return {
            "steps": state.step, "apples_per_player": state.income,
            "income_per_player": state.income, "objective": w, "eta": f(1.0),
            "utilitarian": state.income.sum(), "egalitarian": state.income.min(),
            "nash_welfare": state.income.sum(), "productivity": state.output,
            "equality": f(1.0), "income_equality": f(1.0),
            "egalitarian_income": state.income.min(), "sustainability": f(0.0),
            "peace": f(1.0), "tax_revenue": f(0.0),
            "period_rates": jnp.broadcast_to(state.rates, (periods, g.num_brackets)),
            "mean_rates": state.rates, "principal_return": w, "tax_cap": f(1.0),
        }
