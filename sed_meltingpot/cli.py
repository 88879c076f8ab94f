"""Flags shared by scripts/evaluate.py and scripts/render_video.py.

Game flags default to None, meaning "the checkpoint's setting, or
GameConfig's default without a checkpoint", so a flag only overrides what
the user typed. The checks live here so both scripts report a bad value by
its flag name.
"""

from __future__ import annotations

from typing import Any

from absl import flags

from sed_meltingpot import voting, welfare
from sed_meltingpot.config import GameConfig
from sed_meltingpot.evaluation import PLAYER_CHOICES
from sed_meltingpot.principals import parse_principal

GAME_FLAGS = ("num_players", "episode_length", "tax_period", "rounds_per_episode",
              "voting_rule", "welfare", "map")


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
    flags.DEFINE_integer("num_players", None, "Players (default: checkpoint's or 7).",
                         lower_bound=1)
    flags.DEFINE_integer("episode_length", None, "Steps per episode (default: checkpoint's "
                         "or 1000).", lower_bound=1)
    flags.DEFINE_integer("tax_period", None, "Steps per tax period (default: checkpoint's or "
                         "50).", lower_bound=1)
    flags.DEFINE_integer("rounds_per_episode", None, "Voting rounds per episode.",
                         lower_bound=1)
    flags.DEFINE_string("voting_rule", None, f"One of {sorted(voting.VOTING_RULES)}, or "
                        "fixed:<eta> (eta in [0, 1]).")
    flags.DEFINE_string("welfare", None, f"One of {sorted(welfare.WELFARE_FUNCTIONS)}.")
    flags.DEFINE_string("map", None, "Substrate map: default or large.")
    register_voting_rule_validator("voting_rule")
    flags.register_validator(
        "welfare", lambda v: v is None or v in welfare.WELFARE_FUNCTIONS,
        message=f"--welfare must be one of {sorted(welfare.WELFARE_FUNCTIONS)}")
    flags.register_validator("map", lambda v: v in (None, "default", "large"),
                             message="--map must be 'default' or 'large'")
    flags.register_multi_flags_validator(
        ["players", "checkpoint"], lambda v: v["players"] != "checkpoint" or v["checkpoint"],
        message="--players=checkpoint needs --checkpoint")


def check_writable(flag: str, path: str, *, is_file: bool = False) -> None:
    """Creates the folder `path` (or the folder of the file `path`) and a
    scratch file in it, so that an output that cannot be written fails before
    any work, naming the flag. Tried rather than `os.access`, which says yes
    to root even on a read-only file system."""
    import os
    import tempfile

    folder = os.path.dirname(os.path.abspath(path)) if is_file else path
    if is_file and os.path.isdir(path):
        raise ValueError(f"--{flag}={path!r} is a folder, not a file")
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write_test_"):
            pass
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


def register_principal_validator(flag: str, agent_word: str) -> None:
    """`--flag` takes a scripted principal (`none`, `fixed:r0,r1,r2`, `random`),
    `agent_word` (the learned/trained principal) or nothing."""
    game = GameConfig()

    def check(value: str | None) -> bool:
        if value is None or value == agent_word:
            return True
        try:
            parse_principal(value, num_brackets=game.num_brackets, rate_levels=game.rate_levels)
        except ValueError as e:
            raise flags.ValidationError(f"--{flag}: {e}") from e
        return True

    flags.register_validator(flag, check)
