"""Hyperparameters declared once: on their config dataclass field.

A field made with `hyperparameter(default, help)` carries its command-line help
(and bounds) with its default, so `cli.define_config_flags` defines the flag
and `cli.replace_from_flags` reads it back by iterating over the dataclass:
adding a hyperparameter is one line in `GameConfig`, `TrainConfig` or
`TwinTrainConfig`, not a field, a flag and a mapping kept in step by hand.
No absl here: the configs import this module on machines without the scripts'
dependencies (the JAX twin).
"""

from __future__ import annotations

import dataclasses
from typing import Any

METADATA_KEY = "hyperparameter"


@dataclasses.dataclass(frozen=True)
class FlagInfo:
    """What a field's flag says beyond its name (the field's) and default.

    `preset`: the default comes from `--preset` (`runs.train_config.preset`), so
    the flag defaults to None, meaning "the preset's value"."""

    help: str
    lower_bound: float | None = None
    upper_bound: float | None = None
    preset: bool = False


def hyperparameter(default: Any, help: str, *, lower_bound: float | None = None,
                   upper_bound: float | None = None, preset: bool = False) -> Any:
    """A dataclass field with a flag: `num_players: int = hyperparameter(7, "Players.")`."""
    return dataclasses.field(default=default, metadata={
        METADATA_KEY: FlagInfo(help, lower_bound, upper_bound, preset)})


def flag_fields(config_cls: type) -> list[tuple[dataclasses.Field, FlagInfo]]:
    """The fields of `config_cls` declared with `hyperparameter`, in declaration order."""
    return [(f, f.metadata[METADATA_KEY]) for f in dataclasses.fields(config_cls)
            if METADATA_KEY in f.metadata]
