"""The RLlib PPO config (new API stack) of a run, built from `GameConfig` and `TrainConfig`.

RLlib-only, so it lives apart from the engine-neutral `runs.train_config`: this
module imports that and the callbacks, neither imports it (the layering of issue 17).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.runs.train_config import CURRICULUM_KEY, TrainConfig

__all__ = ["ENV_RUNNER_MAX_RESTARTS", "ENV_RUNNER_RESTART_DELAY_S", "build_ppo_config",
           "env_config"]

# Env-runner fault tolerance (RLlib's default delay, 60 s, is meant for
# replaced cloud nodes; a local crash restarts at once).
ENV_RUNNER_MAX_RESTARTS = 1000
ENV_RUNNER_RESTART_DELAY_S = 5.0


def env_config(game: GameConfig, train: TrainConfig, *, selfishness: tuple[float, ...]
               ) -> dict[str, Any]:
    """The env_config handed to every SEDMultiAgentEnv (types fixed per run)."""
    game_values = dataclasses.asdict(dataclasses.replace(game, selfishness=selfishness))
    return {
        "game": game_values,
        "seed": train.seed,
        "principal": train.principal,
        "frame_stack": train.frame_stack,
        "pixels_per_tile": train.pixels_per_tile,
        CURRICULUM_KEY: train.tax_cap_curriculum(learned=train.principal == "learned"),
    }


def build_ppo_config(game: GameConfig, train: TrainConfig, *, selfishness: tuple[float, ...]
                     ) -> Any:
    """The RLlib PPOConfig (new API stack) for a run."""
    from sed_meltingpot.core.optional import extra_import

    with extra_import("rllib", __name__):
        from ray.rllib.algorithms.ppo import PPOConfig
        from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
        from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from sed_meltingpot.envs.rllib_env import (
        PLAYERS_MODULE,
        PRINCIPAL,
        SEDMultiAgentEnv,
        policy_mapping_fn,
    )
    from sed_meltingpot.training.rllib.callbacks import SEDCallbacks
    from sed_meltingpot.training.rllib.learner import MINIBATCH_SIZES_KEY, SEDPPOTorchLearner
    from sed_meltingpot.training.rllib.modules import ImageFeaturesModule

    train.validate()
    game.validate()
    learned = train.principal == "learned"
    model = {"pixels_per_tile": train.pixels_per_tile,
             "conv_channels": list(train.conv_channels), "hidden": train.hidden}
    specs = {PLAYERS_MODULE: RLModuleSpec(module_class=ImageFeaturesModule, model_config=model)}
    if learned:
        specs[PRINCIPAL] = RLModuleSpec(module_class=ImageFeaturesModule,
                                        model_config={**model, "conv2_stride": 2})
    lr: Any = train.lr
    if train.lr_anneal:
        lr = [[0, train.lr], [max(1, train.total_env_steps), 0.0]]

    config = (
        PPOConfig()
        .api_stack(enable_rl_module_and_learner=True, enable_env_runner_and_connector_v2=True)
        .environment(SEDMultiAgentEnv, env_config=env_config(game, train,
                                                             selfishness=selfishness))
        .framework("torch")
        .env_runners(
            num_env_runners=train.num_env_runners,
            num_envs_per_env_runner=train.num_envs_per_env_runner,
            rollout_fragment_length=train.rollout_fragment_length,
            num_cpus_per_env_runner=train.num_cpus_per_env_runner,
        )
        .multi_agent(
            policies=set(specs),
            policy_mapping_fn=policy_mapping_fn,
            policies_to_train=sorted(specs),
            count_steps_by="env_steps",
        )
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs=specs))
        .training(
            lr=lr, gamma=train.gamma, lambda_=train.lambda_, clip_param=train.clip_param,
            entropy_coeff=train.entropy_coeff, vf_loss_coeff=train.vf_loss_coeff,
            grad_clip=train.grad_clip, grad_clip_by="global_norm",
            use_kl_loss=False, kl_coeff=0.0, vf_clip_param=math.inf,
            use_gae=True, use_critic=True,
            train_batch_size_per_learner=train.train_batch_size,
            minibatch_size=train.minibatch_size, num_epochs=train.num_epochs,
            shuffle_batch_per_epoch=True,
        )
        .learners(
            num_learners=0, num_gpus_per_learner=1 if train.num_gpus > 0 else 0,
            learner_class=SEDPPOTorchLearner,
            learner_config_dict={MINIBATCH_SIZES_KEY: {
                PRINCIPAL: train.principal_minibatch_size}},
        )
        .callbacks(SEDCallbacks)
        # A crashed env runner (OOM kill, lost node) is replaced by a fresh one
        # with the same index; the iteration goes on with the others' samples.
        .fault_tolerance(restart_failed_env_runners=True,
                         max_num_env_runner_restarts=ENV_RUNNER_MAX_RESTARTS,
                         delay_between_env_runner_restarts_s=ENV_RUNNER_RESTART_DELAY_S)
        .debugging(seed=train.seed)
        .reporting(metrics_num_episodes_for_smoothing=20)
    )
    return config
