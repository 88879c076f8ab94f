"""Checkpoints of twin training runs (flax msgpack serialization; JAX and flax only).

Layout, beside the RLlib trainer's: <run>/checkpoints/iter_NNNNNN/
  twin_checkpoint.json   iteration, the two NetworkSpecs (enough to rebuild the networks)
  players.msgpack        players' params
  principal.msgpack      principal's params (runs with a learned principal only)
  train_state.msgpack    optimiser states, rng and iteration (for --restore)
The game state is not saved: like the RLlib path, a restored run starts fresh episodes.
`save` writes the folder whole or not at all (runs/checkpoint_files.py's `atomic_folder`:
a hidden temporary sibling, the marker last, renamed into place), and a file that does
not load raises DamagedCheckpointError naming it (train.py --restore, evaluate,
render_video and the lever analysis all read checkpoints through this module).
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

from sed_meltingpot.runs import checkpoint_files, runlog
from sed_meltingpot.training.jax import networks

CHECKPOINT_DIR = runlog.CHECKPOINT_DIR  # the run folder's, as for RLlib checkpoints
MARKER = runlog.TWIN_CHECKPOINT_MARKER  # one of runlog.CHECKPOINT_MARKERS
PLAYERS_FILE, PRINCIPAL_FILE, STATE_FILE = "players.msgpack", "principal.msgpack", \
    "train_state.msgpack"


class DamagedCheckpointError(ValueError):
    """A checkpoint file that does not load (truncated, not msgpack, bad JSON); the
    message names the file."""


def is_checkpoint(path: str) -> bool:
    return os.path.exists(os.path.join(path, MARKER))


def latest_checkpoint(path: str, warn: checkpoint_files.Warn | None = None) -> str:
    """`path` itself if it is a twin checkpoint, else the newest complete one under it
    (a newer folder whose save was interrupted is skipped, with a `warn` line)."""
    return checkpoint_files.newest_complete(path, warn=warn, engine="jax")


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
    """Writes one checkpoint folder whole: into a temporary sibling, the marker last,
    then renamed to `path` (replacing an existing one whole), so that a kill or a full
    disk mid-save never leaves a half-written `path` (checkpoint_files.atomic_folder;
    ENOSPC: CheckpointSaveError, one line)."""
    with checkpoint_files.atomic_folder(path) as folder:

        def write(name: str, tree: Any) -> None:
            _write_file(os.path.join(folder, name), serialization.to_bytes(jax.device_get(tree)))

        write(PLAYERS_FILE, players_params)
        if principal_spec is not None:
            write(PRINCIPAL_FILE, principal_params)
        write(STATE_FILE, train_state)
        meta = {"iteration": int(iteration), "players": _spec_json(players_spec),
                "principal": _spec_json(principal_spec)}
        _write_file(os.path.join(folder, MARKER), json.dumps(meta, indent=2).encode())
    return os.path.abspath(path)


def _write_file(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _damaged(path: str, error: Exception) -> DamagedCheckpointError:
    return DamagedCheckpointError(f"{path} is damaged or truncated ({type(error).__name__}: "
                                  f"{error})")


def read_meta(path: str) -> dict[str, Any]:
    """The marker's JSON; DamagedCheckpointError naming it if it is not a checkpoint's."""
    name = os.path.join(path, MARKER)
    with open(name) as f:
        text = f.read()
    try:
        meta = json.loads(text)
        if not isinstance(meta, dict) or "players" not in meta:
            raise ValueError("not a checkpoint's metadata (no 'players')")
    except ValueError as e:
        raise _damaged(name, e) from e
    return meta


def _spec_of(path: str, which: str) -> networks.NetworkSpec | None:
    try:
        return _spec_from(read_meta(path).get(which))
    except (TypeError, ValueError, AttributeError) as e:
        if isinstance(e, DamagedCheckpointError):
            raise
        raise _damaged(os.path.join(path, MARKER), e) from e


def _read_tree(name: str, template: Any) -> Any:
    """A msgpack file restored into `template`'s structure; DamagedCheckpointError
    naming the file when it does not load (truncated, another structure)."""
    with open(name, "rb") as f:
        data = f.read()
    try:
        return serialization.from_bytes(template, data)
    except (ValueError, TypeError, KeyError) as e:
        raise _damaged(name, e) from e


def check_files(path: str) -> None:
    """Reads every file of the checkpoint `path` without building a network (the plan
    of `train.py --restore`, before anything compiles): DamagedCheckpointError names
    the first that does not load; FileNotFoundError one that is missing."""
    _spec_of(path, "players")
    learned = _spec_of(path, "principal") is not None
    for name in (PLAYERS_FILE, STATE_FILE) + ((PRINCIPAL_FILE,) if learned else ()):
        with open(os.path.join(path, name), "rb") as f:
            data = f.read()
        try:
            serialization.msgpack_restore(data)
        except (ValueError, TypeError) as e:
            raise _damaged(os.path.join(path, name), e) from e


def load_params(path: str, which: str) -> tuple[networks.NetworkSpec | None, Any]:
    """(spec, params) of `which` in {"players", "principal"}; (None, None) if absent."""
    spec = _spec_of(path, which)
    if spec is None:
        return None, None
    template = networks.init_params(spec, jax.random.PRNGKey(0))
    name = PLAYERS_FILE if which == "players" else PRINCIPAL_FILE
    return spec, _read_tree(os.path.join(path, name), template)


def load_train_state(path: str, template: dict[str, Any]) -> dict[str, Any]:
    return _read_tree(os.path.join(path, STATE_FILE), template)


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
