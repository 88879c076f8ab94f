"""Configuration for Apple Picking: Commons Harvest for Social Environment Design.

The game world of "Position: Social Environment Design" (Zhang et al., ICML
2024, Section 4 and Appendix A): Melting Pot's Commons Harvest (open) with

* a fixed episode length (default 1000 steps) instead of a stochastic ending;
* apple regrowth by the number of live apples within radius 2 of an eaten
  apple's cell (0 -> 0.0, 1 -> 0.0025, 2 -> 0.005, >=3 -> 0.025);
* per-player signals computed in Lua for the tax and voting layer above it:
  `APPLES_EATEN` (this step), `NEARBY` (which other players are inside the
  view window) and `ZAPPED` (out of play after a zap); and the global
  `WORLD.NUM_APPLES` (live apples).

Walls, floor, grass, spawn points, avatars and the zapper are Melting Pot's
Commons Harvest prefabs, reused unchanged; the apple and the added avatar
observations are this project's Lua components (`lua/levels/apple_picking`).
Every number here is a default that `sed_meltingpot.game.substrate.get_config`
overrides.
"""

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from sed_meltingpot.substrates import apple_picking_data as data

from sed_meltingpot.core.optional import extra_import

with extra_import("lua", __name__):
    from meltingpot.configs.substrates import commons_harvest__open as commons_harvest
    from meltingpot.utils.substrates import colors, shapes, specs
    from ml_collections import config_dict

# Meltingpot-free facts (maps, regrowth, counts) live in `apple_picking_data`,
# shared with the JAX twin.
ASCII_MAP = data.ASCII_MAP
ASCII_MAP_LARGE = data.ASCII_MAP_LARGE
REGROWTH_RADIUS = data.REGROWTH_RADIUS
REGROWTH_PROBABILITIES = data.REGROWTH_PROBABILITIES
APPLE_REWARD = data.APPLE_REWARD
EPISODE_LENGTH = data.EPISODE_LENGTH
NUM_PLAYERS = data.NUM_PLAYERS
NUM_INSIDE_SPAWNS = data.NUM_INSIDE_SPAWNS
SPRITE_SIZE = data.SPRITE_SIZE

# `a` is an apple that starts eaten (used by tests that control regrowth).
CHAR_PREFAB_MAP = {
    "P": {"type": "all", "list": ["floor", "spawn_point"]},
    "Q": {"type": "all", "list": ["floor", "inside_spawn_point"]},
    " ": "floor",
    "W": "wall",
    "A": {"type": "all", "list": ["grass", "apple"]},
    "a": {"type": "all", "list": ["grass", "eaten_apple"]},
}

ACTION_SET = commons_harvest.ACTION_SET  # noop, forward, backward, left, right,
                                         # turn left, turn right, fire zapper
INDIVIDUAL_OBSERVATIONS = data.PLAYER_OBSERVATIONS
# With `debug_observations`: POSITION/ORIENTATION (Melting Pot's LocationObserver)
# and the zapper's internal counters, plus the global apple field `WORLD.APPLES`;
# tests use them to start the JAX twin from the Lua state.
DEBUG_OBSERVATIONS = ("POSITION", "ORIENTATION", "ZAP_TIMER", "WAIT_FRAMES")
GLOBAL_OBSERVATIONS = data.GLOBAL_OBSERVATIONS
DEBUG_GLOBAL_OBSERVATIONS = ("WORLD.APPLES",)


def create_apple_prefab(
    *,
    name: str,
    initial_state: str,
    regrowth_radius: float,
    regrowth_probabilities: Sequence[float],
    reward: float,
) -> dict[str, Any]:
    """An apple that is eaten on contact and regrows by local density."""
    apple = copy.deepcopy(commons_harvest.create_apple_prefab())
    apple["name"] = name
    state_manager = apple["components"][0]
    state_manager["kwargs"] = {
        "initialState": initial_state,
        "stateConfigs": [
            {"state": "apple", "layer": "lowerPhysical", "sprite": "Apple",
             "groups": ["apples"]},
            {"state": "appleWait", "layer": "logic", "sprite": "AppleWait"},
        ],
    }
    # Keep StateManager, Transform and Appearance; replace Melting Pot's
    # Edible/DensityRegrow with this game's components.
    apple["components"] = [c for c in apple["components"]
                           if c["component"] in ("StateManager", "Transform", "Appearance")]
    apple["components"] += [
        {"component": "Harvestable",
         "kwargs": {"liveState": "apple", "waitState": "appleWait", "reward": reward}},
        {"component": "DensityRegrowth",
         "kwargs": {"liveState": "apple", "waitState": "appleWait",
                    "radius": regrowth_radius,
                    "probabilities": list(regrowth_probabilities)}},
    ]
    return apple


def create_prefabs(config: config_dict.ConfigDict) -> dict[str, Any]:
    """Prefabs by name: Commons Harvest's scenery plus this game's apples."""
    apple_kwargs = dict(
        regrowth_radius=float(config.regrowth_radius),
        regrowth_probabilities=[float(p) for p in config.regrowth_probabilities],
        reward=float(config.apple_reward),
    )
    return {
        "floor": commons_harvest.FLOOR,
        "grass": commons_harvest.GRASS,
        "wall": commons_harvest.WALL,
        "spawn_point": commons_harvest.SPAWN_POINT,
        "inside_spawn_point": commons_harvest.INSIDE_SPAWN_POINT,
        "apple": create_apple_prefab(name="apple", initial_state="apple", **apple_kwargs),
        "eaten_apple": create_apple_prefab(
            name="apple", initial_state="appleWait", **apple_kwargs),
    }


def create_scene(debug_map_shape: tuple[int, int] | None = None) -> dict[str, Any]:
    """The scene object: the global apple count (no stochastic ending).

    With `debug_map_shape` (height, width) it also reports `WORLD.APPLES`, the
    live apple of every cell (for tests; costs a grid query per step).
    """
    components = [
        {"component": "StateManager",
         "kwargs": {"initialState": "scene", "stateConfigs": [{"state": "scene"}]}},
        {"component": "Transform"},
        {"component": "AppleCountObservation", "kwargs": {"group": "apples"}},
        # Computes every player's NEARBY at once (read by the avatars' observations).
        {"component": "NearbyPlayersTracker"},
    ]
    if debug_map_shape is not None:
        height, width = debug_map_shape
        components.append({"component": "AppleMapObservation",
                           "kwargs": {"height": height, "width": width}})
    return {"name": "scene", "components": components}


def avatar_colour(player_idx: int) -> Sequence[int]:
    """Player `player_idx`'s avatar colour: Commons Harvest's `colors.human_readable`
    for the first 16 players, then the 62-colour `colors.palette` (see
    `_create_avatar_object`). One place, so the video panel (`rendering`) shows
    the colours the substrate draws."""
    if player_idx < len(colors.human_readable):
        return colors.human_readable[player_idx]
    return colors.palette[player_idx % len(colors.palette)]


def _create_avatar_object(player_idx: int, spawn_group: str) -> dict[str, Any]:
    """A Commons Harvest avatar, for any player index the map can hold.

    Commons Harvest colours avatars from `colors.human_readable` (16 colours)
    and so fails for a 17th player; past those, this builds the avatar of the
    same colour slot and renames it to `player_idx`, coloured from the
    62-colour `colors.palette` (repeating past 62 players: only the map's
    spawn points limit the count).
    """
    num_named = len(colors.human_readable)
    if player_idx < num_named:
        return commons_harvest.create_avatar_object(
            player_idx, commons_harvest.TARGET_SPRITE_SELF, spawn_group=spawn_group)
    template_idx = player_idx % num_named
    avatar = commons_harvest.create_avatar_object(
        template_idx, commons_harvest.TARGET_SPRITE_SELF, spawn_group=spawn_group)
    old, new = template_idx + 1, player_idx + 1  # Lua indices.
    renames = {f"player{old}": f"player{new}", f"Avatar{old}": f"Avatar{new}"}

    def rename(value: Any) -> Any:
        if isinstance(value, str):
            return renames.get(value, value)
        if isinstance(value, dict):
            return {rename(k): rename(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rename(v) for v in value]
        return value

    avatar = rename(avatar)
    components = {c["component"]: c["kwargs"] for c in avatar["components"] if "kwargs" in c}
    components["Avatar"]["index"] = new
    colour = avatar_colour(player_idx)
    components["Appearance"]["palettes"] = [shapes.get_palette(colour)]
    return avatar


def create_avatar_objects(
    num_players: int, debug_observations: bool, ascii_map: str = ASCII_MAP
) -> list[dict[str, Any]]:
    """Commons Harvest avatars plus this game's per-player observations.

    As in Commons Harvest the first `NUM_INSIDE_SPAWNS` players start on `Q`
    tiles, but only as many as the map has; the others start on `P` tiles.
    Zapped players respawn on `P` tiles, or on `Q` tiles if the map has none.
    """
    num_inside = min(NUM_INSIDE_SPAWNS, ascii_map.count("Q"))
    respawn_group = "spawnPoints" if "P" in ascii_map else "insideSpawnPoints"
    avatars = []
    for player_idx in range(num_players):
        spawn_group = "insideSpawnPoints" if player_idx < num_inside else "spawnPoints"
        avatar = _create_avatar_object(player_idx, spawn_group)
        for component in avatar["components"]:
            if component["component"] == "Avatar":
                component["kwargs"]["postInitialSpawnGroup"] = respawn_group
        avatar["components"] += [
            {"component": "ApplesEatenObservation"},
            {"component": "NearbyPlayersObservation"},
            {"component": "ZappedObservation"},
        ]
        if debug_observations:
            avatar["components"] += [
                {"component": "LocationObserver",
                 "kwargs": {"objectIsAvatar": True, "alsoReportOrientation": True}},
                {"component": "ZapStateObservation"},
            ]
        avatars.append(avatar)
    return avatars


def get_config() -> config_dict.ConfigDict:
    """Default configuration; `finalize_config` derives specs and roles."""
    config = config_dict.ConfigDict()
    # Game parameters (paper Section 4 and Appendix A, Table 1).
    config.num_players = NUM_PLAYERS
    config.episode_length = EPISODE_LENGTH
    config.regrowth_radius = REGROWTH_RADIUS
    config.regrowth_probabilities = REGROWTH_PROBABILITIES
    config.apple_reward = APPLE_REWARD
    config.ascii_map = ASCII_MAP
    # Adds `POSITION` and `ORIENTATION` per player (slower; for tests).
    config.debug_observations = False

    config.action_set = ACTION_SET
    config.valid_roles = frozenset({"default"})
    return finalize_config(config)


def finalize_config(config: config_dict.ConfigDict) -> config_dict.ConfigDict:
    """Sets the fields that follow from the game parameters (specs, roles)."""
    rows = config.ascii_map.strip("\n").split("\n")
    height, width = len(rows), len(rows[0])
    individual = list(INDIVIDUAL_OBSERVATIONS)
    if config.debug_observations:
        individual += list(DEBUG_OBSERVATIONS)
    config.individual_observation_names = individual
    config.global_observation_names = list(GLOBAL_OBSERVATIONS)
    if config.debug_observations:
        config.global_observation_names += list(DEBUG_GLOBAL_OBSERVATIONS)
    config.action_spec = specs.action(len(ACTION_SET))
    n = int(config.num_players)
    timestep = {
        "RGB": specs.OBSERVATION["RGB"],
        "READY_TO_SHOOT": specs.OBSERVATION["READY_TO_SHOOT"],
        "NEARBY": specs.float64(n),
        "APPLES_EATEN": specs.float64(),
        "ZAPPED": specs.float64(),
        # Global: the principal's view and the apple count.
        "WORLD.RGB": specs.rgb(height * SPRITE_SIZE, width * SPRITE_SIZE),
        "WORLD.NUM_APPLES": specs.float64(),
    }
    if config.debug_observations:
        timestep["POSITION"] = specs.OBSERVATION["POSITION"]
        timestep["ORIENTATION"] = specs.OBSERVATION["ORIENTATION"]
        timestep["ZAP_TIMER"] = specs.float64()
        timestep["WAIT_FRAMES"] = specs.float64()
        timestep["WORLD.APPLES"] = specs.int32(height, width)
    config.timestep_spec = specs.timestep(timestep)
    config.default_player_roles = ("default",) * n
    return config


def _map_shape(ascii_map: str) -> tuple[int, int]:
    rows = data.map_rows(ascii_map)
    return len(rows), len(rows[0])


def build(roles: Sequence[str], config: config_dict.ConfigDict) -> Mapping[str, Any]:
    """The DMLab2D settings of the substrate for the given player roles."""
    num_players = len(roles)
    return dict(
        levelName="apple_picking",
        # Filled in by `sed_meltingpot.game.substrate` with the installed path.
        levelDirectory=config.level_directory,
        numPlayers=num_players,
        maxEpisodeLengthFrames=int(config.episode_length),
        spriteSize=SPRITE_SIZE,
        topology="BOUNDED",
        simulation={
            "map": config.ascii_map,
            "gameObjects": create_avatar_objects(
                num_players, bool(config.debug_observations), config.ascii_map),
            "prefabs": create_prefabs(config),
            "charPrefabMap": CHAR_PREFAB_MAP,
            "scene": create_scene(
                _map_shape(config.ascii_map) if config.debug_observations else None),
        },
    )
