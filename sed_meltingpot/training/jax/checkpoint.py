"""Checkpoints of twin training runs (flax msgpack serialization; JAX and flax only).

Layout, beside the RLlib trainer's: <run>/checkpoints/iter_NNNNNN/
  twin_checkpoint.json   iteration, the two NetworkSpecs (enough to rebuild the networks)
  players.msgpack        players' params
  principal.msgpack      principal's params (runs with a learned principal only)
  train_state.msgpack    optimiser states, rng and iteration (for --restore)
The game state is not saved: like the RLlib path, a restored run starts fresh episodes.
`load_policy` gives a `FlaxPolicy` that `sed_meltingpot.evaluation` uses to play the
Lua substrate through SEDMultiAgentEnv.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from sed_meltingpot.runs import runlog
from sed_meltingpot.training.jax import networks

CHECKPOINT_DIR = runlog.CHECKPOINT_DIR  # the run folder's, as for RLlib checkpoints
MARKER = runlog.TWIN_CHECKPOINT_MARKER  # one of runlog.CHECKPOINT_MARKERS
PLAYERS_FILE, PRINCIPAL_FILE, STATE_FILE = "players.msgpack", "principal.msgpack", \
    "train_state.msgpack"


def is_checkpoint(path: str) -> bool:
    return os.path.exists(os.path.join(path, MARKER))


def latest_checkpoint(path: str) -> str:
    """`path` itself if it is a twin checkpoint, else the newest one under it."""
    if is_checkpoint(path):
        return path
    folder = os.path.join(path, CHECKPOINT_DIR)
    candidates = sorted(d for d in os.listdir(folder) if d.startswith("iter_") and
                        is_checkpoint(os.path.join(folder, d))) if os.path.isdir(folder) else []
    if not candidates:
        raise FileNotFoundError(f"no twin checkpoint found at {path!r} (looked for "
                                f"{CHECKPOINT_DIR}/iter_*/{MARKER})")
    return os.path.join(folder, candidates[-1])


def _spec_json(spec: networks.NetworkSpec | None) -> dict[str, Any] | None:
    return None if spec is None else dataclasses.asdict(spec)


def _spec_from(values: dict[str, Any] | None) -> networks.NetworkSpec | None:
    if values is None:
        return None
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return networks.NetworkSpec(**values)


def save(path: str, *, iteration: int, players_params: Any, principal_params: Any,
         train_state: dict[str, Any], players_spec: networks.NetworkSpec,
         principal_spec: networks.NetworkSpec | None) -> str:
    """Writes one checkpoint folder (the marker last, so a half-written one is ignored)."""
    os.makedirs(path, exist_ok=True)

    def write(name: str, tree: Any) -> None:
        with open(os.path.join(path, name), "wb") as f:
            f.write(serialization.to_bytes(jax.device_get(tree)))

    write(PLAYERS_FILE, players_params)
    if principal_spec is not None:
        write(PRINCIPAL_FILE, principal_params)
    write(STATE_FILE, train_state)
    with open(os.path.join(path, MARKER), "w") as f:
        json.dump({"iteration": int(iteration), "players": _spec_json(players_spec),
                   "principal": _spec_json(principal_spec)}, f, indent=2)
    return os.path.abspath(path)


def read_meta(path: str) -> dict[str, Any]:
    with open(os.path.join(path, MARKER)) as f:
        return json.load(f)


def load_params(path: str, which: str) -> tuple[networks.NetworkSpec | None, Any]:
    """(spec, params) of `which` in {"players", "principal"}; (None, None) if absent."""
    spec = _spec_from(read_meta(path)[which])
    if spec is None:
        return None, None
    template = networks.init_params(spec, jax.random.PRNGKey(0))
    name = PLAYERS_FILE if which == "players" else PRINCIPAL_FILE
    with open(os.path.join(path, name), "rb") as f:
        return spec, serialization.from_bytes(template, f.read())


def load_train_state(path: str, template: dict[str, Any]) -> dict[str, Any]:
    with open(os.path.join(path, STATE_FILE), "rb") as f:
        return serialization.from_bytes(template, f.read())


class FlaxPolicy:
    """A saved network as a module for `evaluation.ModulePlayers` / `ModulePrincipal`:
    `action_logits(observations)` maps the env's observation dicts (uint8 `image`,
    float32 `features`) to float64 logits, like the torch RLModule's forward pass."""

    def __init__(self, spec: networks.NetworkSpec, params: Any) -> None:
        self.spec, self.params = spec, params
        net = networks.ImageFeaturesNet(spec)
        self._apply = jax.jit(lambda p, image, features: net.apply(p, image, features)[0])

    def action_logits(self, observations: list[dict[str, np.ndarray]]) -> np.ndarray:
        image = np.stack([o["image"] for o in observations])
        features = np.stack([o["features"] for o in observations]).astype(np.float32)
        if image.shape[1:] != tuple(self.spec.image_shape):
            raise ValueError(f"observation image {image.shape[1:]} does not match the "
                             f"network's {tuple(self.spec.image_shape)}")
        logits = self._apply(self.params, jnp.asarray(image, jnp.uint8), jnp.asarray(features))
        return np.asarray(logits, dtype=np.float64)


def load_policy(path: str, which: str) -> FlaxPolicy | None:
    """The players' or principal's FlaxPolicy from a checkpoint folder (None if the run
    had no learned principal)."""
    spec, params = load_params(path, which)
    return None if spec is None else FlaxPolicy(spec, params)
