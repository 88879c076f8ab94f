"""Training settings (paper Appendix A), engine-neutral: both the RLlib path and the
JAX twin read them. The RLlib PPO config built from them is in `training.rllib.rllib_config`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sed_meltingpot.core.hyperparameters import hyperparameter

PRESETS = ("paper", "fast", "quickstart")
# The game settings a preset changes (GameConfig fields; `preset_game`).
PRESET_GAMES: dict[str, dict[str, Any]] = {
    # The small grid's game (experiment/grid.py): few players and short episodes,
    # so that a CPU sees the players learn within minutes.
    "quickstart": {"num_players": 4, "episode_length": 200, "tax_period": 50},
}
# The tax cap's value at the end of its ramp: rates are no longer capped.
TAX_CAP_END = 1.0
# The env_config key of the tax-cap curriculum ({enabled, start, end, fraction,
# total}); declared here, below both its writer (rllib_config) and its reader (callbacks).
CURRICULUM_KEY = "tax_cap_curriculum"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs besides the game.

    Defaults follow the paper's Appendix A (PPO with GAE and parameter
    sharing, rollout fragment 200) and, where it gives no number, common PPO
    settings: lr 2.5e-4 annealed linearly to 0, gamma 0.99, lambda 0.95,
    clip 0.2, entropy 0.01, value coefficient 0.5, gradient clip 0.5,
    minibatch 128, 4 epochs, frame stack 4, 8 pixels per tile. RLlib's own PPO
    defaults that the paper does not use are switched off explicitly: no KL
    loss (use_kl_loss=False, kl_coeff=0) and no value clipping.
    """

    num_iterations: int = hyperparameter(100, "Training iterations.", lower_bound=1)
    seed: int = hyperparameter(0, "Run seed (types, envs, networks).", lower_bound=0)
    principal: str = hyperparameter(
        "learned", "learned | none (no tax) | fixed:r0,r1,r2 | random; with --engine=jax also "
        "the two-timescale ucb | thompson | egreedy (sed_meltingpot/design/two_timescale.py)")
    # Sampling.
    rollout_fragment_length: int = hyperparameter(200, "Env steps per sampled fragment.",
                                                  lower_bound=1)
    train_batch_size: int = hyperparameter(
        1000, "Env steps (game steps + principal turns) per training iteration.", lower_bound=1)
    num_env_runners: int = hyperparameter(1, "Ray actors that sample (0 = sample in the driver).",
                                          lower_bound=0)
    num_envs_per_env_runner: int = hyperparameter(1, "Games per env runner.", lower_bound=1)
    # PPO (paper Appendix A).
    lr: float = hyperparameter(2.5e-4, "Learning rate (annealed linearly to 0).", lower_bound=0.0)
    lr_anneal: bool = True  # linearly to 0 over the run's env-step budget
    gamma: float = 0.99
    lambda_: float = 0.95
    clip_param: float = 0.2
    entropy_coeff: float = 0.01
    vf_loss_coeff: float = 0.5
    grad_clip: float = 0.5
    minibatch_size: int = hyperparameter(128, "Players' PPO minibatch.", lower_bound=1,
                                         preset=True)
    num_minibatches: int = hyperparameter(
        0, "jax engine: the players' PPO minibatches per epoch, by count (PureJaxRL style): "
        "their rows per iteration (--num_envs x --rollout_fragment_length x --num_players) in "
        "N equal minibatches, the remainder (< N rows) left out of each epoch; replaces "
        "--minibatch_size. 0 = off (minibatches of --minibatch_size rows).", lower_bound=0)
    principal_minibatch_size: int = hyperparameter(
        32, "Principal's PPO minibatch (its samples are used num_epochs times).", lower_bound=1)
    num_epochs: int = hyperparameter(4, "PPO epochs per iteration.", lower_bound=1, preset=True)
    # Observations and networks.
    frame_stack: int = hyperparameter(4, "Frames stacked per player.", lower_bound=1)
    pixels_per_tile: int = hyperparameter(8, "1, 2, 4 or 8.", preset=True)
    conv_channels: tuple[int, int] = (16, 32)
    hidden: int = 128
    # Curriculum: tax annealing (paper Appendix A, after Zheng et al. 2022).
    tax_cap_anneal: bool = hyperparameter(
        True, "Anneal the tax cap from tax_cap_start to 1 over the first tax_cap_fraction of "
        "training.")
    tax_cap_start: float = hyperparameter(
        0.1, "The tax cap at the start of its ramp.", lower_bound=0.0, upper_bound=1.0)
    tax_cap_fraction: float = hyperparameter(
        0.02, "Share of training over which the tax cap ramps to 1 (jax engine: share of "
        "phase 2, after --players_only_fraction).", lower_bound=0.0, upper_bound=1.0)
    # Resources.
    num_gpus: int = hyperparameter(0, "GPUs for the learner (0 or 1).", lower_bound=0,
                                   upper_bound=1)
    num_cpus_per_env_runner: float = 1.0

    @property
    def total_env_steps(self) -> int:
        return self.num_iterations * self.train_batch_size

    def tax_cap_curriculum(self, *, learned: bool, total_env_steps: int | None = None
                           ) -> dict[str, Any]:
        """The tax-cap ramp (paper Appendix A) as the one mapping both engines read
        (`training.rllib.callbacks.tax_cap`, `training.jax.ppo.tax_cap_at`), so they cannot
        drift."""
        return {"enabled": self.tax_cap_anneal and learned, "start": self.tax_cap_start,
                "end": TAX_CAP_END, "fraction": self.tax_cap_fraction,
                "total": self.total_env_steps if total_env_steps is None else total_env_steps}

    def validate(self) -> TrainConfig:
        for name in ("num_iterations", "rollout_fragment_length", "train_batch_size",
                     "num_envs_per_env_runner", "minibatch_size", "principal_minibatch_size",
                     "num_epochs", "frame_stack", "hidden"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if not isinstance(self.num_minibatches, int) or self.num_minibatches < 0:
            raise ValueError(f"num_minibatches={self.num_minibatches!r} must be an integer >= 0 "
                             "(0: minibatches of minibatch_size rows)")
        if self.num_env_runners < 0 or self.num_gpus < 0:
            raise ValueError("num_env_runners and num_gpus must be >= 0")
        if self.pixels_per_tile not in (1, 2, 4, 8):
            raise ValueError(f"pixels_per_tile={self.pixels_per_tile} must be 1, 2, 4 or 8")
        for name in ("gamma", "lambda_", "tax_cap_start", "tax_cap_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value!r} is outside [0, 1]")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} must be > 0")
        return self


def whole_fragment_batch(train: TrainConfig) -> tuple[TrainConfig, str | None]:
    """`train` with its batch rounded up to whole sampling rounds, and a note
    saying so (None when nothing changed).

    Each iteration RLlib's env runners return whole fragments of
    `rollout_fragment_length` steps from every sub-env of every runner, so an
    iteration holds a multiple of fragment x runners x envs steps; RLlib
    itself refuses a batch more than 10% off such a multiple
    (`AlgorithmConfig.validate_train_batch_size_vs_rollout_fragment_length`).
    Rounding up keeps at least the requested data per iteration.
    """
    per_round = (train.rollout_fragment_length * max(1, train.num_env_runners)
                 * train.num_envs_per_env_runner)
    rounds = -(-train.train_batch_size // per_round)
    batch = rounds * per_round
    if batch == train.train_batch_size:
        return train, None
    note = (f"--train_batch_size={train.train_batch_size} rounded up to {batch}: {rounds} "
            f"round(s) of --rollout_fragment_length={train.rollout_fragment_length} steps x "
            f"{max(1, train.num_env_runners)} env runner(s) x "
            f"{train.num_envs_per_env_runner} env(s) each (RLlib samples whole fragments)")
    return dataclasses.replace(train, train_batch_size=batch), note


def preset(name: str) -> dict[str, Any]:
    """TrainConfig overrides for a named preset. `fast`: one pixel per tile, a small
    network and 2 epochs, for quick experiments (the defaults otherwise).
    `quickstart`: `fast` with one frame per observation, on the small game of
    `preset_game` (the README's first run)."""
    if name == "paper":
        return {}
    fast = {"pixels_per_tile": 1, "conv_channels": (8, 16), "hidden": 64, "num_epochs": 2,
            "minibatch_size": 256}
    if name == "fast":
        return fast
    if name == "quickstart":
        return {**fast, "frame_stack": 1}
    raise ValueError(f"preset={name!r} is not one of {PRESETS}")


def preset_game(name: str) -> dict[str, Any]:
    """GameConfig overrides for a named preset ({} for `paper` and `fast`, which
    play the paper's game)."""
    if name not in PRESETS:
        raise ValueError(f"preset={name!r} is not one of {PRESETS}")
    return dict(PRESET_GAMES.get(name, {}))
