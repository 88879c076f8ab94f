"""The static layout of a twin world, built once from its ASCII map (numpy only).

`TwinEnv.create` (`twin/env.py`) reads the map with `parse_map`, finds spawn
points and apple cells with `flat_where`, and builds the apple neighbourhood
tables with `apple_tables`; the step (pure JAX) only indexes these tables.
Cells are flat indices `row * width + col`, row 0 = the map's top row.
"""

from __future__ import annotations

import numpy as np

from sed_meltingpot.substrates import apple_picking_data as data


def parse_map(ascii_map: str) -> list[str]:
    """The map's rows; ValueError unless it is a rectangle of known tile characters."""
    if not isinstance(ascii_map, str):
        raise ValueError(f"map must be a string, got {type(ascii_map).__name__}")
    rows = data.map_rows(ascii_map)
    if not rows or not rows[0] or len({len(r) for r in rows}) != 1:
        raise ValueError("map is malformed: it must be a non-empty rectangle of tiles")
    unknown = sorted(set("".join(rows)) - set(data.MAP_CHARS))
    if unknown:
        raise ValueError(f"map has unknown tile characters {unknown}; allowed: "
                         f"{sorted(data.MAP_CHARS)}")
    return rows


def flat_where(rows: list[str], chars: str) -> np.ndarray:
    """int32 flat cells holding one of `chars`, in reading order."""
    width = len(rows[0])
    return np.array([r * width + c for r, row in enumerate(rows) for c, ch in enumerate(row)
                     if ch in chars], np.int32)


def apple_tables(rows: list[str],
                 radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apple cells and the neighbourhoods that Lua `DensityRegrowth` counts over.

    Returns `apple_cells` int32[A] (every cell that holds an apple, live or
    not), `cell_to_apple` int32[H*W] (a cell's apple index, A where none) and
    `neighbours` int32[A, K]: the apples within `radius` of each apple (L2 disc,
    the apple itself excluded), padded with A.
    """
    # Each apple looks up the cells of the disc around it (O(A * disc), not the O(A^2)
    # distances of every pair: a generated map for thousands of players has tens of
    # thousands of apples). The disc's offsets are in reading order, as the apples are,
    # so each row lists its neighbours in increasing index, then the padding.
    height, width = len(rows), len(rows[0])
    apple_cells = flat_where(rows, data.APPLE + data.EATEN_APPLE)
    num_apples = len(apple_cells)
    cell_to_apple = np.full(height * width, num_apples, np.int32)
    cell_to_apple[apple_cells] = np.arange(num_apples, dtype=np.int32)
    # The engine's disc query takes an integer radius (DMLab2D DiscFindAll).
    r = int(radius)
    offsets = np.array([(dr, dc) for dr in range(-r, r + 1) for dc in range(-r, r + 1)
                        if 0 < dr * dr + dc * dc <= r * r], np.int32).reshape(-1, 2)
    rr = apple_cells[:, None] // width + offsets[None, :, 0]          # [A, D]
    cc = apple_cells[:, None] % width + offsets[None, :, 1]
    inside = (rr >= 0) & (rr < height) & (cc >= 0) & (cc < width)
    found = np.where(inside, cell_to_apple[np.where(inside, rr * width + cc, 0)], num_apples)
    found = np.sort(found, axis=1)  # the apples first, in index order; padding (A) last
    k = max(1, int((found < num_apples).sum(1).max()) if num_apples else 1)
    neighbours = np.full((num_apples, k), num_apples, np.int32)
    neighbours[:, :min(k, found.shape[1])] = found[:, :k]
    return apple_cells, cell_to_apple, neighbours
