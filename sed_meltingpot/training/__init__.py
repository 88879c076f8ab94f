"""The two training engines, one subpackage each (README Layout).

* `training/rllib/`: RLlib's PPO (new API stack, torch) on the Lua substrate, the
  reference game; it needs the `rllib` extra (Ray, torch, Melting Pot).
* `training/jax/`: a jitted PPO on the JAX twin (`sed_meltingpot/twin/`), many
  times faster per environment step; it needs only JAX and flax.

Both read the same engine-neutral run settings and write the same run folder
(`sed_meltingpot/runs/`), so evaluation and analysis read either engine's runs. The
two do not import each other: either installs and runs without the other's
dependencies. This package imports nothing itself.
"""
