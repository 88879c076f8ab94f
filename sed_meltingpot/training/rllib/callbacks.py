"""Callbacks: the tax-cap curriculum and the game's metrics.

* Tax-cap annealing (Zheng et al. 2022; paper Appendix A): the principal's
  rates are multiplied by a cap that rises linearly from `start` to `end`
  over the first `fraction` of the run's env-step budget. It is an
  implementation-map constraint, so it lives in the env (`set_tax_cap`);
  this callback computes it from the sampled steps and pushes it to every
  env runner after each iteration (and at start-up).
* Episode metrics: at each episode's end the env's `last_episode_metrics`
  (computed by the game with `sed_meltingpot.core.welfare`) are logged under
  `sed/...`, so the per-iteration log averages them over finished episodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sed_meltingpot.core.optional import extra_import
from sed_meltingpot.game.kernel import SCALAR_METRICS
from sed_meltingpot.runs.train_config import CURRICULUM_KEY, TAX_CAP_END, TrainConfig

with extra_import("rllib", __name__):
    from ray.rllib.callbacks.callbacks import RLlibCallback
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

__all__ = ["CURRICULUM_KEY", "SCALAR_METRICS", "SEDCallbacks", "apply_tax_cap", "sed_envs",
           "tax_cap"]

_DEFAULT_TRAIN = TrainConfig()  # fallbacks for a curriculum missing a key


def tax_cap(progress_steps: float, curriculum: dict[str, Any]) -> float:
    """Linear ramp from start to end over the first fraction of total steps."""
    if not curriculum.get("enabled", True):
        return TAX_CAP_END
    start = float(curriculum.get("start", _DEFAULT_TRAIN.tax_cap_start))
    end = float(curriculum.get("end", TAX_CAP_END))
    ramp = (float(curriculum.get("fraction", _DEFAULT_TRAIN.tax_cap_fraction))
            * float(curriculum.get("total", 1)))
    if ramp <= 0:
        return end
    return start + (end - start) * min(1.0, max(0.0, progress_steps / ramp))


def sed_envs(env: Any) -> list[Any]:
    """The SEDMultiAgentEnv instances inside an env runner's (vector) env, in
    the vector env's order, so that `sed_envs(env)[env_index]` is the
    sub-env RLlib's callbacks name by `env_index`."""
    from sed_meltingpot.envs.rllib_env import SEDMultiAgentEnv

    found, stack = [], [env]
    while stack:
        item = stack.pop()
        if isinstance(item, SEDMultiAgentEnv):
            found.append(item)
            continue
        children: list[Any] = []
        for attr in ("envs", "env", "unwrapped"):
            child = getattr(item, attr, None)
            if child is None or child is item:
                continue
            children.extend(child if isinstance(child, (list, tuple)) else [child])
        stack.extend(reversed(children))  # depth first, first child first
    unique = {id(e): e for e in found}
    return list(unique.values())


def apply_tax_cap(algorithm: Any) -> float:
    """Sets the cap for the algorithm's current progress on all env runners."""
    curriculum = dict(algorithm.config.env_config.get(CURRICULUM_KEY, {}))
    steps = algorithm.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME),
                                   default=0)
    cap = tax_cap(float(steps), curriculum)

    def set_cap(env_runner: Any) -> None:
        for env in sed_envs(getattr(env_runner, "env", None)):
            env.set_tax_cap(cap)

    algorithm.env_runner_group.foreach_env_runner(set_cap, local_env_runner=True)
    return cap


class SEDCallbacks(RLlibCallback):
    """See the module docstring."""

    def on_algorithm_init(self, *, algorithm: Any, **kwargs: Any) -> None:
        apply_tax_cap(algorithm)

    def on_train_result(self, *, algorithm: Any, result: dict, **kwargs: Any) -> None:
        result.setdefault("sed", {})["tax_cap_next"] = apply_tax_cap(algorithm)

    def on_episode_end(self, *, episode: Any, env_runner: Any = None,
                       metrics_logger: Any = None, env: Any = None, env_index: int = 0,
                       **kwargs: Any) -> None:
        envs = sed_envs(env)
        if not envs or metrics_logger is None:
            return
        target = envs[env_index] if env_index < len(envs) else envs[0]
        metrics = target.last_episode_metrics
        if metrics is None:
            return
        for key in SCALAR_METRICS:
            value = float(metrics[key])
            if np.isfinite(value):
                metrics_logger.log_value(("sed", key), value, reduce="mean", window=20)
        for b, rate in enumerate(metrics["mean_rates"]):
            if np.isfinite(rate):
                metrics_logger.log_value(("sed", f"rate_b{b}"), float(rate), reduce="mean",
                                         window=20)
        for i, apples in enumerate(metrics["apples_per_player"]):
            metrics_logger.log_value(("sed", f"apples_p{i}"), float(apples), reduce="mean",
                                     window=20)
        # The rates of every period of the most recent episode.
        for k, rates in enumerate(metrics["period_rates"]):
            for b, rate in enumerate(rates):
                metrics_logger.log_value(("sed_last_episode", f"p{k:03d}_b{b}"), float(rate),
                                         reduce="mean", window=1)
