"""The learned agents' network inputs, built from the game's observations.

One place for both the RLlib env (`rllib_env`), which hands them to the
agents it trains, and evaluation's `ModulePrincipal`, which plays a trained
principal as a scripted one: both must see exactly what training saw. No
Ray here, so the jax engine's evaluation can import it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sed_meltingpot.game import kernel
from sed_meltingpot.substrates import apple_picking_data

SPRITE = apple_picking_data.SPRITE_SIZE  # pixels per tile rendered by the substrate


def downsample(image: np.ndarray, pixels_per_tile: int) -> np.ndarray:
    """Averages each tile's SPRITE x SPRITE pixels down to pixels_per_tile^2."""
    if pixels_per_tile == SPRITE:
        return image
    k = SPRITE // pixels_per_tile
    h, w, c = image.shape
    return image.reshape(h // k, k, w // k, k, c).mean(axis=(1, 3)).astype(np.uint8)


def principal_input(observation: dict[str, Any], periods_per_round: int,
                    pixels_per_tile: int) -> dict[str, np.ndarray]:
    """`SEDGame.principal_observation()` as the principal's network sees it:
    the downsampled WORLD.RGB and `kernel.principal_feature_vector` [log1p of each
    player's apples in the last period (n) and in the round so far (n), eta, current
    rates (B), position of the period in the round], the twin's formula."""
    features = kernel.principal_feature_vector(
        observation["LAST_PERIOD_APPLES"], observation["ROUND_APPLES"], observation["ETA"],
        observation["TAX_RATES"], observation["PERIOD_IN_ROUND"], periods_per_round, np)
    return {"image": downsample(observation["WORLD.RGB"], pixels_per_tile),
            "features": features}
