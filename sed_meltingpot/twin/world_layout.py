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
    height, width = len(rows), len(rows[0])
    apple_cells = flat_where(rows, data.APPLE + data.EATEN_APPLE)
    num_apples = len(apple_cells)
    cell_to_apple = np.full(height * width, num_apples, np.int32)
    cell_to_apple[apple_cells] = np.arange(num_apples, dtype=np.int32)
    rc = np.stack([apple_cells // width, apple_cells % width], -1)
    d2 = ((rc[:, None, :] - rc[None, :, :]) ** 2).sum(-1)
    # The engine's disc query takes an integer radius (DMLab2D DiscFindAll).
    r2 = int(radius) ** 2
    close = (d2 <= r2) & ~np.eye(num_apples, dtype=bool)
    k = max(1, int(close.sum(1).max()) if num_apples else 1)
    neighbours = np.full((num_apples, k), num_apples, np.int32)
    for a in range(num_apples):
        idx = np.flatnonzero(close[a])
        neighbours[a, :len(idx)] = idx
    return apple_cells, cell_to_apple, neighbours
