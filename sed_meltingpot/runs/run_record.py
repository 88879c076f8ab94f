"""A run's `run_config.json`: written once by either trainer, read back typed.

`write_run_config` writes the game (with the run's players' types), the training
settings, the engine and a jax run's twin settings; `read_run` reads a run folder back
as a `RunRecord` (engine, GameConfig, TrainConfig, `principals.PrincipalSpec`, a jax
run's `TwinSettings`, its checkpoints), validated once, where it is read, with errors
that name the file. No Ray, no JAX. `runlog` re-exports these names.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.game.principals import PrincipalSpec
from sed_meltingpot.runs.run_files import (
    CHECKPOINT_DIR,
    CHECKPOINT_MARKERS,
    ENGINES,
    RUN_CONFIG_FILE,
    clean,
)
from sed_meltingpot.runs.train_config import TrainConfig


def write_run_config(folder: str, *, game: GameConfig, train: TrainConfig,
                     selfishness: Sequence[float], engine: str | None = None,
                     twin: Mapping[str, Any] | None = None) -> str:
    """Writes `<folder>/run_config.json`: `engine` (None: left out, an RLlib run), the
    game and training settings, the players' types and a jax run's `twin` section
    (`TwinSettings`' fields but obs_mode and frame_stack); non-finite floats are
    stored as null. Returns its path. `read_run` reads it back."""
    values: dict[str, Any] = {} if engine is None else {"engine": engine}
    values.update(game=dataclasses.asdict(game), train=dataclasses.asdict(train),
                  selfishness=selfishness)
    if twin is not None:
        values["twin"] = dict(twin)
    path = os.path.join(folder, RUN_CONFIG_FILE)
    with open(path, "w") as f:
        json.dump(clean(values), f, indent=2)
    return path


@dataclasses.dataclass(frozen=True)
class TwinSettings:
    """A jax run's observations (`obs_mode`, `frame_stack`: from its TrainConfig, what
    its networks take) and the `twin` section of its run_config.json (None where the
    section does not hold the entry). `recipe`: training.jax.recipe.PrincipalRecipe's fields
    (a dict: that module imports JAX)."""

    obs_mode: str  # "tiles" (1 pixel per tile) or "pixels"
    frame_stack: int
    num_envs: int | None = None
    rollout_length: int | None = None
    num_seeds: int | None = None
    dtype: str | None = None
    game_steps_per_iteration: int | None = None
    recipe: dict[str, Any] | None = None
    phase1_iterations: int | None = None
    # A two-timescale principal's settings (design/two_timescale.py: it set the fixed
    # rates; the schedule it chose is in the run's designer.json).
    designer: dict[str, Any] | None = None


# The `twin` section's entries (TwinSettings' fields but those taken from the train
# settings) and their JSON types.
_TWIN_SECTION = {"num_envs": int, "rollout_length": int, "num_seeds": int, "dtype": str,
                 "game_steps_per_iteration": int, "recipe": dict, "phase1_iterations": int,
                 "designer": dict}
_JSON_TYPE_NAMES = {int: "an integer", str: "a string", dict: "an object"}
_RUN_ENTRIES = ("engine", "game", "train", "selfishness", "twin")


def obs_mode_of(train: TrainConfig) -> str:
    """The twin's observation mode for a run's settings (training.jax.ppo.TwinTrainConfig's)."""
    return "tiles" if train.pixels_per_tile == 1 else "pixels"


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """A run's run_config.json, typed and validated where it is read (`read_run`).

    `game` carries the run's players' types (the file's top-level `selfishness`);
    `principal` is `train.principal` parsed (a fixed schedule checked against the
    game's brackets); `twin` is set for jax runs only; `checkpoints` are the
    `checkpoints/iter_*` folders that hold a checkpoint of either engine, oldest
    first (empty where the record was parsed from a dict, `parse_run_config`)."""

    engine: str  # ENGINES
    game: GameConfig
    train: TrainConfig
    principal: PrincipalSpec
    twin: TwinSettings | None = None
    run_dir: str | None = None
    checkpoints: tuple[str, ...] = ()

    @property
    def latest_checkpoint(self) -> str | None:
        return self.checkpoints[-1] if self.checkpoints else None


def _settings(cls: type, section: Any, name: str) -> Any:
    """A GameConfig / TrainConfig from its section: lists as tuples, and a null where
    the field's default is not None meaning that default (clean() stores a
    non-finite float, divergence_delta = inf, as null)."""
    if not isinstance(section, dict):
        raise ValueError(f"'{name}' must be an object of {cls.__name__} fields, got "
                         f"{section!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(section) - set(fields))
    if unknown:
        raise ValueError(f"unknown {name} settings {unknown}; known: {sorted(fields)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()
              if v is not None or fields[k].default is None}
    return cls(**values)


def _twin_settings(section: Any, train: TrainConfig) -> TwinSettings:
    if not isinstance(section, dict):
        raise ValueError(f"'twin' must be an object, got {section!r}")
    unknown = sorted(set(section) - set(_TWIN_SECTION))
    if unknown:
        raise ValueError(f"unknown twin settings {unknown}; known: {sorted(_TWIN_SECTION)}")
    for key, value in section.items():
        kind = _TWIN_SECTION[key]
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ValueError(f"twin {key}={value!r} must be {_JSON_TYPE_NAMES[kind]}")
    values = {k: dict(v) if isinstance(v, dict) else v for k, v in section.items()}
    return TwinSettings(obs_mode=obs_mode_of(train), frame_stack=train.frame_stack, **values)


def parse_run_config(values: Any, *, source: str = RUN_CONFIG_FILE) -> RunRecord:
    """The RunRecord of run_config.json's contents (`run_dir` and `checkpoints` unset);
    ValueError naming `source`, the entry and what is allowed."""
    try:
        if not isinstance(values, dict):
            raise ValueError(f"holds {type(values).__name__} {values!r}, not an object of "
                             "a run's settings")
        unknown = sorted(set(values) - set(_RUN_ENTRIES))
        if unknown:
            raise ValueError(f"unknown entries {unknown}; known: {list(_RUN_ENTRIES)}")
        engine = values.get("engine", "rllib")
        if engine not in ENGINES:
            raise ValueError(f"engine={engine!r} must be one of {list(ENGINES)}")
        if "game" not in values:
            raise ValueError("has no 'game' settings")
        game = _settings(GameConfig, values["game"], "game")
        types = values.get("selfishness")
        if types:  # the run's players' types
            if not isinstance(types, list):
                raise ValueError(f"selfishness={types!r} must be a list of types")
            game = dataclasses.replace(game, selfishness=tuple(float(s) for s in types))
        if game.selfishness is not None and len(game.selfishness) != game.num_players:
            raise ValueError(f"selfishness={list(game.selfishness)} must hold one type per "
                             f"player (num_players={game.num_players})")
        game.validate()
        train = _settings(TrainConfig, values.get("train", {}), "train").validate()
        principal = PrincipalSpec.parse(train.principal, num_brackets=game.num_brackets)
        twin = None
        if engine == "jax":
            twin = _twin_settings(values.get("twin", {}), train)
        elif values.get("twin") is not None:
            raise ValueError(f"a 'twin' section belongs to a jax run, not engine={engine!r}")
    except (TypeError, ValueError) as e:
        raise ValueError(f"{source}: {e}") from e
    return RunRecord(engine=engine, game=game, train=train, principal=principal, twin=twin)


def is_checkpoint(path: str) -> bool:
    """Whether `path` is a checkpoint folder of either engine (CHECKPOINT_MARKERS)."""
    return any(os.path.exists(os.path.join(path, m)) for m in CHECKPOINT_MARKERS)


def run_checkpoints(run_dir: str) -> tuple[str, ...]:
    """The run's `checkpoints/iter_*` folders that hold a checkpoint, oldest first."""
    folder = os.path.join(run_dir, CHECKPOINT_DIR)
    if not os.path.isdir(folder):
        return ()
    return tuple(os.path.join(folder, d) for d in sorted(os.listdir(folder))
                 if d.startswith("iter_") and is_checkpoint(os.path.join(folder, d)))


def read_run(run_dir: str) -> RunRecord:
    """A run folder's settings (its run_config.json) and checkpoints. OSError
    (FileNotFoundError) where the file cannot be read; ValueError naming the file
    where it is not JSON or not a valid run's settings."""
    path = os.path.join(run_dir, RUN_CONFIG_FILE)
    with open(path) as f:
        text = f.read()
    try:
        values = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from e
    return dataclasses.replace(parse_run_config(values, source=path), run_dir=run_dir,
                               checkpoints=run_checkpoints(run_dir))


