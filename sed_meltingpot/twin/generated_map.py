"""Maps for many players: Commons Harvest patches tiled to the number of players (numpy only).

The paper's map (`apple_picking_data.ASCII_MAP`, 24x18) is one Commons Harvest
"open" patch for 7 players: 64 apples in six clusters, 2 inner (`Q`) and 60
outer (`P`) spawn points. A generated map keeps that patch and its density
(about 7 players per patch) and only repeats the layout: `patches_for(n)`
patches, laid out in a near-square grid of `patch_grid(n)` (columns, rows),
their interiors side by side with no wall between them (as the `large` map
joins two) and one wall around the whole. The regrowth rule is the world's
(`TwinEnv`: an apple regrows with a probability set by the live apples within
radius 2), so nothing about the rules changes, only the layout; 7 players get
the paper's map exactly.

Pure functions of the number of players, so a run's map is reproducible from
its config (`GameConfig.map = "generated"`). Only the JAX twin plays them: the
Lua substrate keeps its two maps (`game/substrate.py` refuses this one).
"""

from __future__ import annotations

import math

from sed_meltingpot.game.config import GENERATED_MAP, GENERATED_MAX_PLAYERS
from sed_meltingpot.substrates import apple_picking_data as data

#: The `map` name (`GameConfig.map`, `--map`, `TwinEnv.create(map=...)`).
GENERATED = GENERATED_MAP
#: Players per patch: the paper's 7 players on its one patch.
PLAYERS_PER_PATCH = data.NUM_PLAYERS
#: The sizes a generated map is made for. The top is a bound on build time and memory
#: (4096 players: 38,400 apples on a 552x386 map), not on the rules.
MIN_PLAYERS, MAX_PLAYERS = 1, GENERATED_MAX_PLAYERS

_PATCH = [row[1:-1] for row in data.map_rows(data.ASCII_MAP)[1:-1]]  # the interior, 22x16


def check_num_players(num_players: object) -> int:
    """num_players as an int; ValueError naming --num_players, the value and the range."""
    if (isinstance(num_players, bool) or not isinstance(num_players, int)
            or not MIN_PLAYERS <= num_players <= MAX_PLAYERS):
        raise ValueError(
            f"--num_players={num_players!r} is outside [{MIN_PLAYERS}, {MAX_PLAYERS}], the "
            f"sizes --map={GENERATED} is made for")
    return num_players


def patches_for(num_players: int) -> int:
    """Patches needed at the paper's density: ceil(n / 7)."""
    return math.ceil(check_num_players(num_players) / PLAYERS_PER_PATCH)


def patch_grid(num_players: int) -> tuple[int, int]:
    """(columns, rows) of patches: ceil(sqrt(p)) columns and as many rows as p needs, so
    the map is near-square and holds at most one row of patches more than p."""
    p = patches_for(num_players)
    cols = math.isqrt(p - 1) + 1  # ceil(sqrt(p))
    return cols, math.ceil(p / cols)


def generated_map(num_players: int) -> str:
    """The ASCII map for `num_players` players (`apple_picking_data.MAP_CHARS` tiles)."""
    cols, rows = patch_grid(num_players)
    inner = [row * cols for _ in range(rows) for row in _PATCH]
    wall = data.WALL * (len(inner[0]) + 2)
    return "\n".join(["", wall, *(data.WALL + row + data.WALL for row in inner), wall, ""])
