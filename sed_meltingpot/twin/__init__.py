"""The JAX twin of the apple_picking substrate and its SED game (issue 9): the game
world only (the world's rules and layout, rendering, `sed.SEDTwin`, the JaxMARL
wrapper). The jax engine that trains on it is `sed_meltingpot/training/jax/`.

Pure, fixed-shape, jit/vmap-able functions; importing this package (or
anything under it) imports neither Melting Pot, dmlab2d, TensorFlow nor Ray,
so it runs on a machine that has only JAX. The Lua substrate stays the
reference: `tests/test_twin_env.py` replays the same actions in both.
"""

from sed_meltingpot.twin.env import StepOut, TwinEnv, TwinState, nearby, ready_to_shoot

__all__ = ["StepOut", "TwinEnv", "TwinState", "nearby", "ready_to_shoot"]
