"""The RLlib engine: PPO of the players and the principal on the Lua substrate.

`scripts/train.py --engine=rllib` runs it. Kept apart from `training/jax/` because
it needs Ray, torch and Melting Pot (the `rllib` extra), which the JAX engine does
not. Modules:

* `rllib_config`: the RLlib PPOConfig built from `runs.train_config.TrainConfig`;
* `modules`: the torch RLModule (conv features, policy and value heads);
* `learner`: the PPO learner (per-module minibatches, the principal's loss mask);
* `callbacks`: episode metrics, the principal's curriculum and the tax cap;
* `trainer`: the training loop, checkpoints and the run folder.
"""
