"""Facts about the apple_picking substrate that do not need Melting Pot.

One home for the numbers both engines use: the Lua substrate's config
(`substrates/apple_picking.py`, which imports this module) and the JAX twin
(`sed_meltingpot.twin`, which must run on a machine without Melting Pot,
dmlab2d, TensorFlow or Ray). Importing this module imports nothing but the
standard library.

The map and the avatar/zapper numbers are Melting Pot's Commons Harvest
(open) values (`meltingpot.configs.substrates.commons_harvest__open`:
`ASCII_MAP`, `create_avatar_object`'s `Avatar.view` and `Zapper` kwargs);
`tests/test_twin_env.py` checks that they still equal Melting Pot's.
"""

from __future__ import annotations

# The Commons Harvest "open" layout: 24x18 tiles, 64 apples. `Q` are the two
# spawn points near the apples used by the first two players, `P` the rest.
# A copy of `commons_harvest__open.ASCII_MAP` (a test keeps them equal).
ASCII_MAP = """
WWWWWWWWWWWWWWWWWWWWWWWW
WAAA    A      A    AAAW
WAA    AAA    AAA    AAW
WA    AAAAA  AAAAA    AW
W      AAA    AAA      W
W       A      A       W
W  A                A  W
W AAA  Q        Q  AAA W
WAAAAA            AAAAAW
W AAA              AAA W
W  A                A  W
W                      W
W                      W
W                      W
W  PPPPPPPPPPPPPPPPPP  W
W PPPPPPPPPPPPPPPPPPPP W
WPPPPPPPPPPPPPPPPPPPPPPW
WWWWWWWWWWWWWWWWWWWWWWWW
"""

# A larger map for scaling to more players: two open layouts side by side,
# sharing no wall between them (46x18 tiles, 128 apples, 4 inner and 120
# outer spawn points).
ASCII_MAP_LARGE = "\n".join(
    [""] + [row[:-1] + row[1:] for row in ASCII_MAP.strip("\n").split("\n")] + [""])

REGROWTH_RADIUS = 2.0
# Indexed by the number of live apples within the radius; the last entry
# applies to all larger counts.
REGROWTH_PROBABILITIES = (0.0, 0.0025, 0.005, 0.025)
APPLE_REWARD = 1.0
EPISODE_LENGTH = 1000
NUM_PLAYERS = 7
# The first `NUM_INSIDE_SPAWNS` players start on `Q` tiles, as in Commons Harvest.
NUM_INSIDE_SPAWNS = 2
SPRITE_SIZE = 8

# Tile characters: `a` is an apple that starts eaten (used by tests that
# control regrowth).
WALL, FLOOR, SPAWN, INSIDE_SPAWN, APPLE, EATEN_APPLE = "W", " ", "P", "Q", "A", "a"
MAP_CHARS = (WALL, FLOOR, SPAWN, INSIDE_SPAWN, APPLE, EATEN_APPLE)

# The avatar's partial view (Commons Harvest `Avatar.view`): tiles ahead,
# behind and to each side of the avatar; the RGB observation is
# (FORWARD + BACKWARD + 1) x (LEFT + RIGHT + 1) tiles.
VIEW_FORWARD, VIEW_BACKWARD, VIEW_LEFT, VIEW_RIGHT = 9, 1, 5, 5
# The view in tiles, (rows, cols) = (11, 11), and the tile the avatar stands on.
VIEW_SHAPE = (VIEW_FORWARD + VIEW_BACKWARD + 1, VIEW_LEFT + VIEW_RIGHT + 1)
VIEW_SELF_TILE = (VIEW_FORWARD, VIEW_LEFT)

# Commons Harvest `Zapper` kwargs.
ZAP_COOLDOWN = 2
BEAM_LENGTH = 3
BEAM_RADIUS = 1
FRAMES_TILL_RESPAWN = 4

# Melting Pot's action set for Commons Harvest, in order. Moves are relative
# to the avatar's facing direction (egocentric).
ACTION_NAMES = (
    "NOOP", "FORWARD", "BACKWARD", "STEP_LEFT", "STEP_RIGHT", "TURN_LEFT", "TURN_RIGHT",
    "FIRE_ZAP")
NUM_ACTIONS = len(ACTION_NAMES)

# Per-player and global observations the substrate exposes (names of its
# timestep observation dict; `substrates/apple_picking.py` declares them to Lua).
PLAYER_OBSERVATIONS = ("RGB", "READY_TO_SHOOT", "NEARBY", "APPLES_EATEN", "ZAPPED")
GLOBAL_OBSERVATIONS = ("WORLD.RGB", "WORLD.NUM_APPLES")
# Orientation codes of Melting Pot's ORIENTATION observation.
NORTH, EAST, SOUTH, WEST = 0, 1, 2, 3


def map_rows(ascii_map: str) -> list[str]:
    """The map's rows, top first, without the surrounding blank lines."""
    return ascii_map.strip("\n").split("\n")
