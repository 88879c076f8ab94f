"""Who acts in an evaluated episode: the players' policies (random, scripted,
greedy for apples, a trained module) and a trained principal's module as a
`principals.Principal`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.game.observations import principal_input
from sed_meltingpot.substrates import apple_picking_data

NUM_ACTIONS = apple_picking_data.NUM_ACTIONS  # Melting Pot's action set
PLAYER_CHOICES = ("checkpoint", "random", "greedy_apples")


class PlayerPolicy(Protocol):
    """Acts for all players at once (they share one policy in training)."""

    def reset(self, seed: int) -> None: ...

    def act(self, observations: dict[str, dict[str, np.ndarray]]) -> dict[str, int]: ...


class RandomPlayers:
    """Uniformly random actions: the game before any training."""

    def __init__(self, num_actions: int = NUM_ACTIONS) -> None:
        self.num_actions = num_actions
        self._rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, observations: dict[str, dict[str, np.ndarray]]) -> dict[str, int]:
        return {a: int(self._rng.integers(self.num_actions)) for a in observations}


class ScriptedPlayers:
    """Actions from `fn(step, player_index, observation, rng) -> action`."""

    def __init__(self, fn: Callable[[int, int, dict[str, np.ndarray], np.random.Generator], int]
                 ) -> None:
        self.fn = fn
        self._step = 0
        self._rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        self._step = 0
        self._rng = np.random.default_rng(seed)

    def act(self, observations: dict[str, dict[str, np.ndarray]]) -> dict[str, int]:
        actions = {a: int(self.fn(self._step, int(a.rsplit("_", 1)[1]), o, self._rng))
                   for a, o in observations.items()}
        self._step += 1
        return actions


class GreedyApplePlayers:
    """Scripted baseline that harvests greedily: each player steps towards the
    nearest apple in its own view, else wanders; it never zaps. With it the
    tax can be studied before any training (random players barely eat).

    Apples are recognised by their tile's mean colour, which does not change
    when the egocentric view rotates; `apple_colour` is measured from the
    substrate (`apple_tile_colour`).
    """

    FORWARD, BACKWARD, LEFT, RIGHT, TURN_LEFT, TURN_RIGHT = (
        apple_picking_data.ACTION_NAMES.index(name) for name in (
            "FORWARD", "BACKWARD", "STEP_LEFT", "STEP_RIGHT", "TURN_LEFT", "TURN_RIGHT"))

    def __init__(self, apple_colour: Sequence[float], pixels_per_tile: int,
                 view_tiles: tuple[int, int] = apple_picking_data.VIEW_SHAPE,
                 own_tile: tuple[int, int] = apple_picking_data.VIEW_SELF_TILE,
                 tolerance: float = 6.0, explore: float = 0.1) -> None:
        self.apple_colour = np.asarray(apple_colour, dtype=float)
        self.pixels_per_tile, self.view_tiles, self.own_tile = pixels_per_tile, view_tiles, own_tile
        self.tolerance, self.explore = tolerance, explore
        self._rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def apples_in_view(self, image: np.ndarray) -> np.ndarray:
        """(rows, cols) of apple tiles in the newest frame of a stacked view."""
        p, (h, w) = self.pixels_per_tile, self.view_tiles
        frame = image[..., -3:].astype(float).reshape(h, p, w, p, 3).mean(axis=(1, 3))
        return np.argwhere(np.abs(frame - self.apple_colour).max(axis=-1) <= self.tolerance)

    def _action(self, image: np.ndarray) -> int:
        if self._rng.random() < self.explore:
            return int(self._rng.integers(self.FORWARD, self.TURN_RIGHT + 1))  # moves, turns
        apples = self.apples_in_view(image)
        if not len(apples):
            return int(self._rng.choice([self.FORWARD] * 3 + [self.TURN_LEFT, self.TURN_RIGHT]))
        offsets = apples - np.asarray(self.own_tile)
        dr, dc = offsets[np.abs(offsets).sum(axis=1).argmin()]
        if abs(dr) >= abs(dc):
            return self.FORWARD if dr < 0 else self.BACKWARD
        return self.LEFT if dc < 0 else self.RIGHT

    def act(self, observations: dict[str, dict[str, np.ndarray]]) -> dict[str, int]:
        return {a: self._action(o["image"]) for a, o in observations.items()}


def apple_tile_colour(game: GameConfig) -> np.ndarray:
    """Mean RGB of a tile holding an apple, read from WORLD.RGB at reset at the
    map's apple cells ('A')."""
    from sed_meltingpot.game import substrate as substrate_lib

    overrides: dict[str, Any] = {"map": game.map} if game.map is not None else {}
    config = substrate_lib.get_config(game.substrate, num_players=game.num_players, **overrides)
    env = substrate_lib.build_from_config(config, seed=0)
    try:
        world = env.reset().observation[0]["WORLD.RGB"].astype(float)
    finally:
        env.close()
    rows = config.ascii_map.strip("\n").split("\n")
    sprite = world.shape[0] // len(rows)
    tiles = world.reshape(len(rows), sprite, -1, sprite, 3).mean(axis=(1, 3))
    cells = [(r, c) for r, row in enumerate(rows) for c, ch in enumerate(row) if ch == "A"]
    if not cells:
        raise ValueError("the map has no apples ('A') to measure the apple colour from")
    return np.mean([tiles[r, c] for r, c in cells], axis=0)


def _softmax_sample(logits: np.ndarray, rng: np.random.Generator, greedy: bool) -> np.ndarray:
    """One index per row of `logits` (argmax if greedy)."""
    if greedy:
        return logits.argmax(axis=-1)
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p = z / z.sum(axis=-1, keepdims=True)
    u = rng.random(p.shape[:-1] + (1,))
    return np.minimum((p.cumsum(axis=-1) < u).sum(axis=-1), p.shape[-1] - 1)


def _forward(module: Any, observations: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    # A jax-engine network (training/jax/checkpoint.FlaxPolicy) has action_logits.
    if hasattr(module, "action_logits"):
        return module.action_logits(list(observations))
    from sed_meltingpot.core.optional import extra_import

    with extra_import("rllib", "playing an RLlib checkpoint"):
        import torch

    batch = {"obs": {
        "image": torch.from_numpy(np.stack([o["image"] for o in observations])),
        "features": torch.from_numpy(np.stack([o["features"] for o in observations])),
    }}
    with torch.no_grad():
        out = module.forward_inference(batch)["action_dist_inputs"]
    return out.detach().cpu().numpy().astype(np.float64)


class ModulePlayers:
    """The trained players' shared RLModule; samples its policy like in
    training unless `greedy` (argmax)."""

    def __init__(self, module: Any, greedy: bool = False) -> None:
        self.module, self.greedy = module, greedy
        self._rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, observations: dict[str, dict[str, np.ndarray]]) -> dict[str, int]:
        agents = list(observations)
        logits = _forward(self.module, [observations[a] for a in agents])
        actions = _softmax_sample(logits, self._rng, self.greedy)
        return {a: int(x) for a, x in zip(agents, actions, strict=True)}


class ModulePrincipal:
    """The trained principal's module as a `principals.Principal`: it builds
    the network input training saw (`observations.principal_input`) from the
    game's principal observation and samples one rate level per bracket, so
    the envs and evaluation play it like any scripted principal."""

    def __init__(self, module: Any, game: GameConfig, pixels_per_tile: int,
                 greedy: bool = False) -> None:
        self.module, self.greedy = module, greedy
        self.num_brackets, self.num_levels = game.num_brackets, game.num_rate_levels
        self.rate_levels = np.asarray(game.rate_levels, dtype=float)
        self.periods_per_round = game.round_length // game.tax_period
        self.pixels_per_tile = pixels_per_tile
        self._rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def levels(self, observation: dict[str, Any]) -> np.ndarray:
        """One rate-level index per bracket for the game's principal observation."""
        network_input = principal_input(observation, self.periods_per_round,
                                        self.pixels_per_tile)
        logits = _forward(self.module, [network_input])[0]
        if logits.shape != (self.num_brackets * self.num_levels,):
            raise ValueError(f"principal module gives {logits.shape[0]} logits; expected "
                             f"{self.num_brackets} brackets x {self.num_levels} levels")
        logits = logits.reshape(self.num_brackets, self.num_levels)
        return _softmax_sample(logits, self._rng, self.greedy).astype(np.int64)

    def __call__(self, observation: dict[str, Any]) -> np.ndarray:
        return self.rate_levels[self.levels(observation)]

    def __str__(self) -> str:
        return "trained"
