"""The JAX engine: a jitted PPO of the players and the principal on the twin.

`scripts/train.py --engine=jax` runs it. It trains on the game world of
`sed_meltingpot/twin/` through the `protocol.TrainableGame` interface, and needs only
JAX, flax and optax (no Ray, torch or Melting Pot), which is why it lives apart
from `training/rllib/`. Modules:

* `ppo_config`: TwinTrainConfig, the run inputs and the schedules;
* `recipe`: the principal's training recipe (PrincipalRecipe);
* `networks`: the flax networks (the same architecture as the RLlib module);
* `protocol`: the game interface the trainer drives (TrainableGame);
* `rollout`: one period of play (the principal's turn, then the players' steps);
* `ppo_losses`: GAE and the PPO loss, pure functions of arrays;
* `ppo`: the algorithm (state types, `make_functions`: init and the jitted update);
* `checkpoint`: saving and loading the networks (msgpack);
* `trainer`: the training loop and the run folder;
* `play`: evaluation episodes of a trained run on the twin.
"""
