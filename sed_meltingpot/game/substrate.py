"""Build the project's substrates with Melting Pot's API.

`get_config(name, **overrides)` and `build(name, roles=...)` mirror
`meltingpot.substrate`; the returned object is a Melting Pot `Substrate`
(dm_env interface) with the same wrappers in the same order as
`meltingpot.utils.substrates.substrate.build_substrate`, plus an explicit
`seed` so that runs are reproducible.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Sequence
from typing import Any

from sed_meltingpot.core.optional import extra_import

with extra_import("lua", __name__):
    import meltingpot
    from meltingpot.utils.substrates import builder, substrate_factory
    from meltingpot.utils.substrates import substrate as mp_substrate
    from meltingpot.utils.substrates.wrappers import (
        collective_reward_wrapper,
        discrete_action_wrapper,
        multiplayer_wrapper,
        observables_wrapper,
    )
    from ml_collections import config_dict

from sed_meltingpot import lua as _lua_package
from sed_meltingpot.game.config import GENERATED_MAP

# Substrate name -> (config module in `sed_meltingpot.substrates`, overrides).
_SUBSTRATES: dict[str, tuple[str, dict[str, Any]]] = {
    "apple_picking": ("apple_picking", {}),
    "apple_picking__large": ("apple_picking", {"map": "large", "num_players": 16}),
}
SUBSTRATES = tuple(_SUBSTRATES)

# Names a user may override, with what each means (used in error messages).
OVERRIDABLE = {
    "num_players": "number of players (1 to the map's spawn capacity)",
    "episode_length": "steps per episode (a positive integer)",
    "regrowth_probabilities": "per-step regrowth probability by live neighbours, each in [0, 1]",
    "regrowth_radius": "neighbourhood radius for regrowth (>= 0)",
    "apple_reward": "reward per apple eaten",
    "ascii_map": "the map as an ASCII string (rows of equal length)",
    "map": "a named map: 'default' or 'large' ('generated' is the JAX twin's only)",
    "debug_observations": "add POSITION and ORIENTATION per player (for tests)",
}

LEVEL_DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(_lua_package.__file__)), "levels")
# Melting Pot's builder resolves `levelDirectory/levelName` against the folder
# that holds the `meltingpot` package (so that the level can `require`
# Melting Pot's Lua modules); a relative path reaches this project's levels
# from there, wherever either package is installed.
_MELTINGPOT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(meltingpot.__file__)))


def _config_module(name: str):
    if name not in _SUBSTRATES:
        raise ValueError(f"Unknown substrate {name!r}; available: {', '.join(SUBSTRATES)}")
    module_name, defaults = _SUBSTRATES[name]
    return importlib.import_module(f"sed_meltingpot.substrates.{module_name}"), defaults


def map_capacity(ascii_map: str, num_inside_spawns: int) -> int:
    """Largest number of players the map can spawn (inside + outer points)."""
    inside, outer = ascii_map.count("Q"), ascii_map.count("P")
    return min(inside, num_inside_spawns) + outer


def validate_map(ascii_map: str, allowed_chars: Sequence[str]) -> None:
    """Raises ValueError unless the map is a non-empty rectangle of known tiles."""
    if not isinstance(ascii_map, str):
        raise ValueError(f"ascii_map must be a string, got {type(ascii_map).__name__}")
    rows = ascii_map.strip("\n").split("\n")
    if not rows or not rows[0]:
        raise ValueError("ascii_map is empty")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        bad = [i for i, r in enumerate(rows) if len(r) != len(rows[0])]
        raise ValueError(
            f"ascii_map is malformed: rows must have equal length; row 0 has "
            f"{len(rows[0])} tiles, rows {bad} differ")
    unknown = sorted(set(ascii_map.replace("\n", "")) - set(allowed_chars))
    if unknown:
        raise ValueError(
            f"ascii_map is malformed: unknown tile characters {unknown}; "
            f"allowed: {sorted(allowed_chars)}")
    if "P" not in ascii_map and "Q" not in ascii_map:
        raise ValueError("ascii_map is malformed: it has no spawn points ('P' or 'Q')")


def _validate(config: config_dict.ConfigDict, module) -> None:
    validate_map(config.ascii_map, list(module.CHAR_PREFAB_MAP))
    capacity = map_capacity(config.ascii_map, module.NUM_INSIDE_SPAWNS)
    n = config.num_players
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= capacity:
        raise ValueError(
            f"num_players={n!r} is outside [1, {capacity}]: the map has {capacity} spawn points")
    length = config.episode_length
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise ValueError(f"episode_length={length!r} must be a positive integer")
    probs = list(config.regrowth_probabilities)
    if not probs:
        raise ValueError("regrowth_probabilities is empty; give one per neighbour count")
    for k, p in enumerate(probs):
        if not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"regrowth_probabilities[{k}]={p!r} is outside [0, 1]")
    if not float(config.regrowth_radius) >= 0:
        raise ValueError(f"regrowth_radius={config.regrowth_radius!r} must be >= 0")


def get_config(name: str, **overrides: Any) -> config_dict.ConfigDict:
    """Returns the locked configuration of substrate `name` with `overrides`.

    Overridable keys are listed in `OVERRIDABLE`; an unknown key or a bad
    value raises ValueError naming it and its allowed range.
    """
    module, defaults = _config_module(name)
    config = module.get_config().unlock()
    for key, value in {**defaults, **overrides}.items():
        if key not in OVERRIDABLE:
            raise ValueError(
                f"Unknown override {key!r} for substrate {name!r}; allowed: "
                + ", ".join(OVERRIDABLE))
        if key == "map":
            maps = {"default": module.ASCII_MAP, "large": module.ASCII_MAP_LARGE}
            if value == GENERATED_MAP:  # sized from the players: the JAX twin's only
                raise ValueError(
                    f"--map={value} is played only by the JAX twin (--engine=jax); the Lua "
                    f"substrate (--engine=rllib) has the maps {' and '.join(sorted(maps))}")
            if value not in maps:
                raise ValueError(f"map={value!r} is not one of {sorted(maps)}")
            config.ascii_map = maps[value]
        elif key == "regrowth_probabilities":
            config.regrowth_probabilities = tuple(value)
        else:
            setattr(config, key, value)
    _validate(config, module)
    config = module.finalize_config(config)
    config.level_directory = os.path.relpath(LEVEL_DIRECTORY, _MELTINGPOT_ROOT)
    config.substrate_name = name
    return config.lock()


def build_from_config(
    config: config_dict.ConfigDict,
    *,
    roles: Sequence[str] | None = None,
    seed: int | None = None,
) -> mp_substrate.Substrate:
    """Builds a Melting Pot `Substrate` from `config` (see `get_config`).

    `roles` defaults to `config.default_player_roles`; its length must equal
    `config.num_players`. `seed` fixes the Lua seed of the first episode (the
    episodes after it use seed+1, seed+2, ...); None draws one at random.
    """
    module, _ = _config_module(config.substrate_name)
    roles = tuple(config.default_player_roles if roles is None else roles)
    if len(roles) != config.num_players:
        raise ValueError(
            f"roles has {len(roles)} entries but num_players={config.num_players}; "
            "pass num_players= to get_config/build")
    invalid = set(roles) - set(config.valid_roles)
    if invalid:
        raise ValueError(f"Invalid roles {sorted(invalid)}; valid: {sorted(config.valid_roles)}")
    settings = module.build(roles, config)
    return _build_substrate(
        settings,
        seed=seed,
        individual_observations=config.individual_observation_names,
        global_observations=config.global_observation_names,
        action_table=config.action_set,
    )


def build(
    name: str,
    *,
    roles: Sequence[str] | None = None,
    seed: int | None = None,
    **overrides: Any,
) -> mp_substrate.Substrate:
    """Builds substrate `name`, like `meltingpot.substrate.build`.

    The number of players is `len(roles)` when roles are given, else the
    config's `num_players` (overridable).
    """
    if roles is not None:
        if "num_players" in overrides and overrides["num_players"] != len(roles):
            raise ValueError(
                f"num_players={overrides['num_players']} disagrees with len(roles)={len(roles)}")
        overrides["num_players"] = len(roles)
    config = get_config(name, **overrides)
    return build_from_config(config, roles=roles, seed=seed)


def get_factory(name: str, **overrides: Any) -> substrate_factory.SubstrateFactory:
    """A Melting Pot `SubstrateFactory` for `name` (random seeds)."""
    config = get_config(name, **overrides)
    module, _ = _config_module(name)

    def lab2d_settings_builder(roles):
        return module.build(roles, config)

    return substrate_factory.SubstrateFactory(
        lab2d_settings_builder=lab2d_settings_builder,
        individual_observations=config.individual_observation_names,
        global_observations=config.global_observation_names,
        action_table=config.action_set,
        timestep_spec=config.timestep_spec,
        action_spec=config.action_spec,
        valid_roles=config.valid_roles,
        default_player_roles=config.default_player_roles,
    )


def _build_substrate(
    lab2d_settings: dict[str, Any],
    *,
    seed: int | None,
    individual_observations: Sequence[str],
    global_observations: Sequence[str],
    action_table: Sequence[Any],
) -> mp_substrate.Substrate:
    """`meltingpot...substrate.build_substrate` with an explicit seed."""
    env = builder.builder(lab2d_settings, env_seed=seed)
    try:
        env = observables_wrapper.ObservablesWrapper(env)
        env = multiplayer_wrapper.Wrapper(
            env,
            individual_observation_names=individual_observations,
            global_observation_names=global_observations,
        )
        env = discrete_action_wrapper.Wrapper(env, action_table=action_table)
        env = collective_reward_wrapper.CollectiveRewardWrapper(env)
        return mp_substrate.Substrate(env)
    except Exception:
        with contextlib.suppress(Exception):
            env.close()
        raise


