"""Flags shared by the scripts: the config dataclasses' hyperparameters
(`define_config_flags` / `replace_from_flags`), and the game flags of
scripts/evaluate.py and scripts/render_video.py.

Game flags default to None, meaning "the checkpoint's setting, or
GameConfig's default without a checkpoint", so a flag only overrides what
the user typed. The checks live here so both scripts report a bad value by
its flag name.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from absl import flags

from sed_meltingpot.core import voting, welfare
from sed_meltingpot.core.hyperparameters import flag_fields
from sed_meltingpot.evaluation import PLAYER_CHOICES
from sed_meltingpot.game.config import MAPS, WELFARE_ON, GameConfig
from sed_meltingpot.game.principals import parse_principal

GAME_FLAGS = tuple(f.name for f, _ in flag_fields(GameConfig))


def define_config_flags(config_cls: type, *, defaults: str = "config",
                        flag_values: flags.FlagValues = flags.FLAGS) -> tuple[str, ...]:
    """An absl flag for each `hyperparameter` field of `config_cls` (name, help
    and bounds from the field; its type from the default's). Returns the names.

    defaults: "config" - the field's default (None for preset fields: "the
    preset's"); "none" - None for every flag, to override a checkpoint's settings
    only where the user typed a value."""
    names = []
    for field, info in flag_fields(config_cls):
        value = field.default
        default = None if defaults == "none" or info.preset else value
        help_text = info.help
        if default is None and value is not None:
            help_text += (f" (default: the checkpoint's, else {value})" if defaults == "none"
                          else f" (default: the preset's; {value} in the paper preset)")
        kwargs = {"flag_values": flag_values}
        bounds = {"lower_bound": info.lower_bound, "upper_bound": info.upper_bound}
        if isinstance(value, bool):
            flags.DEFINE_bool(field.name, default, help_text, **kwargs)
        elif isinstance(value, int):
            flags.DEFINE_integer(field.name, default, help_text, **bounds, **kwargs)
        elif isinstance(value, float):
            flags.DEFINE_float(field.name, default, help_text, **bounds, **kwargs)
        elif value is None or isinstance(value, str):
            flags.DEFINE_string(field.name, default, help_text, **kwargs)
        else:
            raise TypeError(f"{config_cls.__name__}.{field.name}: no flag type for {value!r}")
        names.append(field.name)
    return tuple(names)


def require_finite_floats(flag_values: flags.FlagValues = flags.FLAGS) -> tuple[str, ...]:
    """Refuses NaN and +-inf in every float flag defined so far (absl's FloatFlag, single
    or multi), with one line naming the flag ("flag --lr=inf: must be a finite number").

    Why: absl's bounds compare, and NaN compares false both ways, so `--lr=nan` passes
    `lower_bound=0`, and `--lr=inf` passes a flag without an upper bound; either trains
    to NaN weights (or plays a whole episode before the video writer fails). A script
    calls this once, after its last DEFINE, so that a float flag added later is covered
    without a word. Returns the names of the flags it covers."""
    import math

    from sed_meltingpot.core.validators import FINITE

    def finite(value: Any) -> bool:
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(v is not None and not math.isfinite(v) for v in values):
            raise flags.ValidationError(FINITE)
        return True

    names = []
    for name in list(flag_values):
        flag = flag_values[name]
        if flag.name != name or not isinstance(flag.parser, flags.FloatParser):
            continue  # a short name, or not a float
        key = (id(flag_values), name)
        if key not in _FINITE_CHECKED:
            flags.register_validator(name, finite, flag_values=flag_values)
            _FINITE_CHECKED.add(key)
        names.append(name)
    return tuple(names)


_FINITE_CHECKED: set[tuple[int, str]] = set()  # (FlagValues, flag) already covered


def replace_from_flags(config: Any, values: Any, names: tuple[str, ...]) -> Any:
    """`config` with the flags `names` that hold a value (None: left as is)."""
    updates = {name: getattr(values, name) for name in names
               if getattr(values, name) is not None}
    return dataclasses.replace(config, **updates)


def replace_from_typed_flags(config: Any, values: flags.FlagValues,
                             names: tuple[str, ...]) -> Any:
    """`config` with the flags `names` that were given (on the command line or in a
    --flagfile) and hold a value. Unlike `replace_from_flags`, a flag left at its
    default changes nothing, so values a preset put in `config` stay unless typed."""
    updates = {name: values[name].value for name in names
               if values[name].present and values[name].value is not None}
    return dataclasses.replace(config, **updates)


def define_game_flags() -> None:
    """Flags for the game played (and the checkpoint and players' policy)."""
    flags.DEFINE_string("checkpoint", None,
                        "Training run directory or checkpoint (checkpoints/iter_N). Its game "
                        "settings, types and modules are used; game flags override settings.")
    flags.DEFINE_enum("players", None, list(PLAYER_CHOICES),
                      "Players' policy: the checkpoint's trained players, uniformly random "
                      "actions, or greedy_apples (scripted: walk to the nearest apple in view; "
                      "blind to the tax). Default: checkpoint if --checkpoint is given, else "
                      "random.")
    flags.DEFINE_bool("greedy", False,
                      "Trained modules act by argmax instead of sampling their policy.")
    flags.DEFINE_integer("seed", 0, "Seed of the first episode (episode k uses seed + k).",
                         lower_bound=0)
    flags.DEFINE_bool("dry_run", False, "Check every flag and load the checkpoint, then exit "
                      "without playing.")
    define_config_flags(GameConfig, defaults="none")
    register_game_validators()
    flags.register_multi_flags_validator(
        ["players", "checkpoint"], lambda v: v["players"] != "checkpoint" or v["checkpoint"],
        message="--players=checkpoint needs --checkpoint")


def register_game_validators() -> None:
    """Checks of the GameConfig flags whose values are names (None passes: default)."""
    register_voting_rule_validator("voting_rule")
    flags.register_validator(
        "welfare", lambda v: v is None or v in welfare.WELFARE_FUNCTIONS,
        message=f"--welfare must be one of {sorted(welfare.WELFARE_FUNCTIONS)}")
    flags.register_validator("welfare_on", lambda v: v in (None, *WELFARE_ON),
                             message=f"--welfare_on must be one of {', '.join(WELFARE_ON)}")
    flags.register_validator("map", lambda v: v in (None, *MAPS),
                             message=f"--map must be one of {', '.join(MAPS)}")


def check_writable(flag: str, path: str, *, is_file: bool = False) -> None:
    """Creates the folder `path` (or the folder of the file `path`) and a
    scratch file in it (`runlog.probe_write`), so that an output that cannot be
    written fails before any work, naming the flag."""
    import os

    from sed_meltingpot.runs.runlog import probe_write

    folder = os.path.dirname(os.path.abspath(path)) if is_file else path
    if is_file and os.path.isdir(path):
        raise ValueError(f"--{flag}={path!r} is a folder, not a file")
    if not is_file and os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"--{flag}={path!r} is a file, not a folder")
    try:
        os.makedirs(folder, exist_ok=True)
        probe_write(folder)
    except OSError as e:
        raise ValueError(f"--{flag}={path!r} is not writable: {e.strerror} "
                         f"({e.filename or folder})") from e


def game_overrides(values: Any) -> dict[str, Any]:
    """The game flags the user set (None where left to the default)."""
    return {name: getattr(values, name) for name in GAME_FLAGS}


def players_kind(values: Any) -> str:
    return values.players or ("checkpoint" if values.checkpoint else "random")


def register_voting_rule_validator(flag: str) -> None:
    """`--flag` takes a registered rule name or `fixed:<eta>` (or nothing)."""

    def check(value: str | None) -> bool:
        if value is None:
            return True
        try:
            voting.get_voting_rule(value)
        except ValueError as e:
            raise flags.ValidationError(f"--{flag}: {e}") from e
        return True

    flags.register_validator(flag, check)


def register_principal_validator(flag: str, agent_word: str,
                                 also: tuple[str, ...] = ()) -> None:
    """`--flag` takes a scripted principal (`none`, `fixed:r0,r1,r2`, `random`),
    `agent_word` (the learned/trained principal), a word of `also` (e.g. the
    two-timescale principals) or nothing."""
    game = GameConfig()

    def check(value: str | None) -> bool:
        if value is None or value == agent_word or value in also:
            return True
        try:
            parse_principal(value, num_brackets=game.num_brackets, rate_levels=game.rate_levels)
        except ValueError as e:
            raise flags.ValidationError(f"--{flag}: {e}") from e
        return True

    flags.register_validator(flag, check)


def quiet_start(values: flags.FlagValues, *, lua: bool = True) -> None:
    """What a script does first in `main`, so that its output starts with its own lines.

    absl's `app.run` lowers Python logging to INFO, which prints JAX's "Unable to
    initialize backend" and Matplotlib's font-cache notices: back to WARNING unless
    `--verbosity` was given. With `lua`, Melting Pot (which loads TensorFlow) is imported
    now, with TensorFlow's C++ start-up lines left out (runs/quiet.py); without the lua
    extra the script fails later with its one-line message naming the extra.
    """
    import contextlib

    from absl import logging

    from sed_meltingpot.runs import quiet

    if not values["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    if lua:
        with contextlib.suppress(ImportError):
            quiet.import_quietly("meltingpot")
