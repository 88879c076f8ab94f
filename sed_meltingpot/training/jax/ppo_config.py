"""The jax trainer's configuration and run inputs (`training/jax/ppo.py` is the algorithm).

  TwinTrainConfig   a run: the game, the RLlib path's TrainConfig, the twin's sizes and
                    the principal's recipe, with its validation and derived sizes
  minibatch_plan    a module's PPO minibatches per epoch, by size or by count
  parse_scripted    the principal spec ('learned', 'random', fixed rates)
  RunInputs         settings that enter the compiled program as inputs (fixed eta,
                    fixed rates): runs differing only in them share one program
  compile_game      the GameConfig the twin is compiled for; make_game its SEDTwin
  schedules         lr_at, tax_cap_at, players_lr, principal_lr: pure functions of the
                    config and the iteration, traced inside the jitted update
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sed_meltingpot.core import voting
from sed_meltingpot.core.hyperparameters import hyperparameter
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.runs.train_config import TAX_CAP_END, TrainConfig
from sed_meltingpot.substrates import apple_picking_data
from sed_meltingpot.training.jax import recipe as recipes

if TYPE_CHECKING:
    from sed_meltingpot.training.jax.protocol import TrainableGame

NUM_ACTIONS = apple_picking_data.NUM_ACTIONS  # Melting Pot's action set
# The rule a `fixed:<eta>` game is compiled with (`compile_game`): GameConfig's default,
# also the voted objective's, so the experiment's objectives share one program.
COMPILED_VOTING_RULE = GameConfig().voting_rule


# ------------------------------------------------------------------ config
@dataclasses.dataclass(frozen=True)
class TwinTrainConfig:
    """A twin training run: the game, the RLlib path's TrainConfig (PPO settings,
    networks, curriculum, principal kind) and the twin's own sizes.

    `rollout_length` game steps per game per iteration (a multiple of the tax period);
    `num_envs` games in parallel; `dtype` the networks' compute dtype.
    `train.train_batch_size`, `num_env_runners` and the like are not used: one
    iteration is num_envs x rollout_length game steps (`env_steps_per_iteration`).
    """

    game: GameConfig = GameConfig()
    train: TrainConfig = TrainConfig()
    num_envs: int = hyperparameter(
        16, "jax engine: games played in parallel; an iteration is --num_envs x "
        "--rollout_fragment_length game steps.", lower_bound=1)
    rollout_length: int = 200  # from --rollout_fragment_length
    dtype: str = hyperparameter(
        "float32", "jax engine: the networks' compute dtype, float32 or bfloat16 (for GPUs).")
    recipe: recipes.PrincipalRecipe = recipes.PrincipalRecipe()

    @property
    def learned(self) -> bool:
        return self.train.principal == "learned"

    @property
    def obs_mode(self) -> str:
        return "tiles" if self.train.pixels_per_tile == 1 else "pixels"

    @property
    def periods_per_rollout(self) -> int:
        return self.rollout_length // self.game.tax_period

    @property
    def game_steps_per_iteration(self) -> int:
        return self.num_envs * self.rollout_length

    @property
    def env_steps_per_iteration(self) -> int:
        turns = self.num_envs * self.periods_per_rollout if self.learned else 0
        return self.game_steps_per_iteration + turns

    @property
    def total_env_steps(self) -> int:
        return self.train.num_iterations * self.env_steps_per_iteration

    @property
    def players_rows(self) -> int:
        """The players' transitions per iteration: one per player and game step."""
        return self.game_steps_per_iteration * self.game.num_players

    @property
    def players_minibatch_plan(self) -> tuple[int, int]:
        """The players' (minibatch size, minibatches per epoch) (`minibatch_plan`): by
        --num_minibatches when it is set, else by --minibatch_size."""
        t = self.train
        return minibatch_plan(self.players_rows, t.minibatch_size, t.num_minibatches)

    @property
    def principal_minibatch_plan(self) -> tuple[int, int]:
        """The principal's plan: one transition per game and period, by its own size."""
        return minibatch_plan(self.num_envs * self.periods_per_rollout,
                              self.train.principal_minibatch_size)

    def schedule(self, iteration: Any) -> recipes.Schedule:
        """The recipe's settings for the iteration being trained (`recipe.schedule`)."""
        t = self.train
        return recipes.schedule(
            iteration, self.recipe, num_iterations=t.num_iterations,
            learned=self.follows_curriculum,
            tax_cap_anneal=t.tax_cap_anneal, tax_cap_start=t.tax_cap_start,
            tax_cap_end=TAX_CAP_END, tax_cap_fraction=t.tax_cap_fraction)

    @property
    def follows_curriculum(self) -> bool:
        """Phase 1 and the cap ramp: the learned principal's, or a scripted one's under
        the recipe's scripted_curriculum."""
        return self.learned or self.recipe.scripted_curriculum

    @property
    def phase1_iterations(self) -> int:
        return recipes.phase1_iterations(self.recipe, self.train.num_iterations,
                                         self.follows_curriculum)

    def validate(self) -> TwinTrainConfig:
        self.game.validate()
        self.train.validate()
        for name in ("num_envs", "rollout_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if self.rollout_length % self.game.tax_period:
            raise ValueError(f"rollout_length (--rollout_fragment_length)={self.rollout_length} "
                             "must be a multiple of "
                             f"tax_period={self.game.tax_period} (the principal acts at each "
                             "period start)")
        if self.train.pixels_per_tile not in (1, 8):
            raise ValueError(f"pixels_per_tile={self.train.pixels_per_tile} must be 1 (tiles) "
                             "or 8 (pixels) with the jax engine")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype={self.dtype!r} must be 'float32' or 'bfloat16'")
        self.recipe.validate()
        if self.recipe.scripted_curriculum and self.learned:
            raise ValueError("--scripted_curriculum is for a scripted principal (none, "
                             "fixed:.., random); the learned one follows it already")
        levels = self.game.num_rate_levels
        if self.recipe.principal_init_level >= levels:
            raise ValueError(f"--principal_init_level={self.recipe.principal_init_level} "
                             f"must be a rate level in [0, {levels - 1}]")
        _ = self.players_minibatch_plan  # ValueError: --num_minibatches above the rows
        parse_scripted(self.train.principal, self.game)
        check_map(self.game)
        return self


def minibatch_plan(rows: int, minibatch: int, num_minibatches: int = 0) -> tuple[int, int]:
    """(minibatch size, minibatches per epoch) of a module with `rows` transitions per
    iteration; each epoch shuffles them and takes that many minibatches.

    By size (`num_minibatches=0`, the default and the RLlib path's plan): minibatches of
    `minibatch` rows, or one of all the rows if there are fewer (RLlib then trains on
    one smaller minibatch); the remainder (< one minibatch) is left out of that epoch.

    By count (`num_minibatches=k > 0`, PureJaxRL style): k minibatches of rows // k rows;
    the rows % k (< k) left over are left out of that epoch (each epoch's fresh shuffle
    leaves out others), as the plan by size leaves out its remainder. Why: on a device a
    minibatch is one sequential Adam step, so thousands of small ones (512 games x 200
    steps x 7 players in 256-row minibatches: 2,800 per epoch) leave it idle, while a few
    large ones keep it busy; PureJaxRL and JaxMARL's IPPO use 4-32 per epoch. It changes
    sample reuse (fewer, larger gradient steps per epoch on the same data), so learning
    per game step can change too. A count equal to rows / minibatch is the size plan.
    ValueError for k above `rows` (empty minibatches)."""
    if num_minibatches:
        if not 0 < num_minibatches <= rows:
            raise ValueError(f"--num_minibatches={num_minibatches} is outside [0, {rows}]: "
                             f"the players' {rows} rows per iteration cannot fill "
                             f"{num_minibatches} minibatches (0: minibatches of "
                             "--minibatch_size rows)")
        return rows // num_minibatches, num_minibatches
    size = min(minibatch, rows)
    return size, rows // size


def check_map(game: GameConfig) -> None:
    """What only the twin's map knows, such as more players than it has spawn points
    (ValueError naming the count): checked in the plan, and so in a dry run, instead of
    when the twin is built after the output folder is written. Cheap: the map is parsed
    with numpy, nothing is compiled."""
    from sed_meltingpot.twin.env import TwinEnv

    TwinEnv.create(game.substrate, num_players=game.num_players,
                   episode_length=game.episode_length,
                   regrowth_probabilities=game.regrowth_probabilities, map=game.map)


def parse_scripted(spec: str, game: GameConfig) -> tuple[str, np.ndarray | None]:
    """('learned' | 'random' | 'rates', the fixed rates of 'none' (zeros) and
    'fixed:..', else None), checked by `principals.PrincipalSpec.parse`."""
    from sed_meltingpot.game.principals import PrincipalSpec

    parsed = PrincipalSpec.parse(spec, num_brackets=game.num_brackets)
    rates = parsed.rates_for(game.num_brackets)
    if rates is not None:
        return "rates", np.asarray(rates, dtype=np.float32)
    return parsed.kind, None


class RunInputs(NamedTuple):
    """A run's settings that enter the compiled program as inputs, not constants: runs
    that differ only in them (the experiment's objectives and fixed schedules) then
    share one compiled program, in this process and in the persistent compile cache."""

    fixed_eta: jax.Array  # f32: eta of a `fixed:<eta>` voting rule; NaN: the players vote
    rates: jax.Array  # f32[B]: a scripted principal's fixed rates (zeros: no tax)


def run_inputs(game: GameConfig, principal: str) -> RunInputs:
    """The inputs of a game (its voting rule) and principal spec (as `parse_scripted`)."""
    eta = voting.fixed_eta(game.voting_rule)
    _, rates = parse_scripted(principal, game)
    return RunInputs(
        jnp.float32(np.nan if eta is None else eta),
        jnp.asarray(np.zeros(game.num_brackets) if rates is None else rates, jnp.float32))


def compile_game(game: GameConfig) -> GameConfig:
    """The game the twin is compiled for: a `fixed:<eta>` voting rule becomes an input
    (`RunInputs.fixed_eta`), so the compiled game votes with the default on-device rule
    and every fixed eta overrides that vote at run time."""
    if voting.fixed_eta(game.voting_rule) is None:
        return game
    return dataclasses.replace(game, voting_rule=COMPILED_VOTING_RULE)


def make_game(config: TwinTrainConfig) -> TrainableGame:
    """The SED twin for a config (imported late: the twin is written by other modules)."""
    from sed_meltingpot.twin.sed import SEDTwin

    return SEDTwin(compile_game(config.game), obs_mode=config.obs_mode,
                   frame_stack=config.train.frame_stack)


# -------------------------------------------------------------- schedules
def lr_at(env_steps: jax.Array | float, lr: float, total_env_steps: int, anneal: bool
          ) -> jax.Array:
    """lr annealed linearly to 0 over the run's env steps (RLlib's [[0, lr], [total, 0]])."""
    if not anneal:
        return jnp.asarray(lr, jnp.float32)
    frac = jnp.clip(jnp.asarray(env_steps, jnp.float32) / max(1, total_env_steps), 0.0, 1.0)
    return jnp.float32(lr) * (1.0 - frac)


def tax_cap_at(env_steps: jax.Array | float, *, enabled: bool, start: float, end: float,
               fraction: float, total: int) -> jax.Array:
    """Tax-cap curriculum: start -> end linearly over the first `fraction` of `total`
    env steps (training/rllib/callbacks.tax_cap; Zheng et al. 2022, paper Appendix A)."""
    if not enabled:
        return jnp.float32(1.0)
    ramp = fraction * total
    if ramp <= 0:
        return jnp.float32(end)
    progress = jnp.clip(jnp.asarray(env_steps, jnp.float32) / ramp, 0.0, 1.0)
    return jnp.float32(start) + jnp.float32(end - start) * progress


def players_lr(config: TwinTrainConfig, iteration: jax.Array) -> jax.Array:
    """The players' lr at an iteration: annealed over the run (`lr_at`), times the recipe's
    phase-2 scale (`recipe.schedule`)."""
    t = config.train
    return lr_at(iteration * config.env_steps_per_iteration, t.lr, config.total_env_steps,
                 t.lr_anneal) * config.schedule(iteration).players_lr_scale


def principal_lr(config: TwinTrainConfig, trained_iterations: jax.Array) -> jax.Array:
    """The principal's lr after it has trained `trained_iterations` iterations (it trains
    only in phase 2): the recipe's constant lr, or linear from it to 0 over phase 2."""
    r = config.recipe
    if r.principal_lr_schedule == "constant":
        return jnp.float32(r.principal_lr)
    length = max(1, config.train.num_iterations - config.phase1_iterations)
    frac = jnp.clip(jnp.asarray(trained_iterations, jnp.float32) / length, 0.0, 1.0)
    return jnp.float32(r.principal_lr) * (1.0 - frac)
