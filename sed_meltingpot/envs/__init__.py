"""The game as other libraries' environments: RLlib's MultiAgentEnv (rllib_env.py) and
PettingZoo's ParallelEnv (pettingzoo_env.py). The JAX twin's JaxMARL environment is
`twin/jaxmarl_env.py`, beside the twin it wraps (it needs only JAX)."""
