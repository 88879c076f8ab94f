"""Checks before a run starts, for both engines (the RLlib trainer,
`training/rllib/trainer.py`, and the jax one, `training/jax/trainer.py`): the output folder, the
checkpoint to restore and its settings, and the players' types. Nothing here starts
Ray or writes anything (`plan_run`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from sed_meltingpot.core import rewards
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.runs import checkpoint_files, runlog
from sed_meltingpot.runs.checkpoint_files import IncompleteCheckpointError
from sed_meltingpot.runs.runlog import CHECKPOINT_DIR, RUN_CONFIG_FILE, RunRecord
from sed_meltingpot.runs.train_config import TrainConfig

# Settings that shape the networks: a checkpoint restores only into a run
# with the same values (flag names as in scripts/train.py).
RESTORE_GAME_FIELDS = ("substrate", "num_players", "thresholds", "num_rate_levels", "map")
RESTORE_TRAIN_FIELDS = ("frame_stack", "pixels_per_tile", "conv_channels", "hidden")


class RunSetupError(ValueError):
    """The run cannot start as asked (output folder, --restore); raised
    before Ray starts and before anything is written."""


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What `plan_run` checked: the checkpoint to restore (None: fresh), the
    run folder it belongs to (None if unknown), the players' types, and `notes`: lines
    for the trainer to print (incomplete checkpoints skipped), kept here so that a plan
    made twice (by the script, then by the trainer) prints them once."""

    checkpoint: str | None
    source_dir: str | None
    selfishness: tuple[float, ...]
    overwrite: bool = False
    notes: tuple[str, ...] = ()


def latest_checkpoint(path: str, *, warn: checkpoint_files.Warn | None = None) -> str:
    """`path` itself if it is a complete checkpoint of either engine, else the newest
    complete one under it; a newer folder whose save was interrupted is skipped with
    one `warn` line (`checkpoint_files.newest_complete`). FileNotFoundError when there
    is none (IncompleteCheckpointError when `path` itself is an interrupted save)."""
    return checkpoint_files.newest_complete(path, warn=warn)


def _run_dir_of(checkpoint: str) -> str | None:
    """The run folder a checkpoint belongs to (the one holding run_config.json)."""
    path = os.path.abspath(checkpoint)
    for _ in range(3):
        if os.path.exists(os.path.join(path, RUN_CONFIG_FILE)):
            return path
        path = os.path.dirname(path)
    return None


def _as_plain(value: Any) -> Any:
    return tuple(_as_plain(v) for v in value) if isinstance(value, (list, tuple)) else value


def _restore_mismatches(source: RunRecord, game: GameConfig, train: TrainConfig
                        ) -> list[str]:
    """Network-shaping settings in which the new run differs from the run
    `source` (read from its run_config.json)."""
    found = []
    for saved, fields, config in ((source.game, RESTORE_GAME_FIELDS, game),
                                  (source.train, RESTORE_TRAIN_FIELDS, train)):
        for name in fields:
            value = getattr(saved, name)
            if _as_plain(value) != _as_plain(getattr(config, name)):
                found.append(f"--{name}: checkpoint {value!r}, this run "
                             f"{getattr(config, name)!r}")
    if source.principal.learned != (train.principal == "learned"):
        found.append(f"--principal: checkpoint {source.train.principal!r}, this run "
                     f"{train.principal!r} (a learned principal is a module of its own)")
    return found


def _check_writable(output_dir: str) -> None:
    path = os.path.abspath(output_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise RunSetupError(f"--output_dir={output_dir!r} is a file, not a folder")
    while not os.path.exists(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        raise RunSetupError(f"--output_dir={output_dir!r} is not writable ({path!r} is not a "
                            "folder)")
    try:
        runlog.probe_write(path)
    except OSError as e:
        raise RunSetupError(f"--output_dir={output_dir!r} is not writable: {e.strerror} "
                            f"({path!r})") from e


def _check_engine(restore: str, checkpoint: str, engine: str) -> None:
    """A checkpoint restores only into the engine that wrote it: said before Ray starts
    (an RLlib restore of a jax run would fail inside RLlib on algorithm_state.pkl)."""
    kind = checkpoint_files.checkpoint_engine(checkpoint)
    if kind is not None and kind != engine:
        marker = (runlog.TWIN_CHECKPOINT_MARKER if kind == "jax"
                  else checkpoint_files.RLLIB_LAST_FILES[0])
        raise RunSetupError(f"--restore={restore!r}: {checkpoint} is a {kind}-engine "
                            f"checkpoint ({marker}), which --engine={engine} cannot restore; "
                            f"restore it with --engine={kind}")


def fresh_types(game: GameConfig, seed: int) -> Any:
    """The players' types of a fresh run: the game's fixed ones, else drawn from the seed
    (`rewards.sample_selfishness`); a restored run keeps its checkpoint's (`plan_run`)."""
    if game.selfishness is not None:
        return game.selfishness
    return rewards.sample_selfishness(game.num_players, seed)


def plan_run(game: GameConfig, train_config: TrainConfig, output_dir: str, *,
             restore: str | None = None, overwrite: bool = False,
             engine: str = "rllib") -> RunPlan:
    """Checks the output folder and `restore` (its newest complete checkpoint, of
    `engine`) without starting Ray or writing anything; raises RunSetupError naming
    the flag."""
    _check_writable(output_dir)
    checkpoint = source_dir = source = None
    notes: list[str] = []
    if restore:
        if not os.path.exists(restore):
            raise RunSetupError(f"--restore={restore!r} does not exist")
        try:
            checkpoint = latest_checkpoint(restore, warn=notes.append)
        except IncompleteCheckpointError as e:
            raise RunSetupError(f"--restore={restore!r}: {e}") from e
        except FileNotFoundError as e:
            skipped = (f"; {len(notes)} incomplete one(s) skipped, saves that were "
                       "interrupted" if notes else "")
            raise RunSetupError(f"--restore={restore!r} holds no complete checkpoint (a run "
                                f"folder with {CHECKPOINT_DIR}/iter_N, or one such folder"
                                f"{skipped})") from e
        _check_engine(restore, checkpoint, engine)
        source_dir = _run_dir_of(checkpoint)
        if source_dir:
            try:
                source = runlog.read_run(source_dir)
            except (OSError, ValueError) as e:
                raise RunSetupError(f"--restore={restore!r}: cannot read "
                                    f"{os.path.join(source_dir, RUN_CONFIG_FILE)}: {e}") from e
            mismatches = _restore_mismatches(source, game, train_config)
            if mismatches:
                raise RunSetupError(f"--restore={restore!r} was trained with other settings; "
                                    "set them as the checkpoint has them: "
                                    + "; ".join(mismatches))
    same = source_dir is not None and os.path.realpath(source_dir) == os.path.realpath(
        output_dir)
    existing = runlog.holds_run(output_dir) if os.path.isdir(output_dir) else []
    if same and overwrite:
        raise RunSetupError(f"--overwrite with --restore={restore!r} would delete the "
                            f"checkpoint being restored from --output_dir={output_dir!r}")
    if existing and not same and not overwrite:
        raise RunSetupError(
            f"--output_dir={output_dir!r} already holds a run ({', '.join(existing)}); "
            f"continue it with --restore={output_dir}, replace it with --overwrite, or choose "
            "another --output_dir")
    if game.selfishness is None and source is not None and source.game.selfishness is not None:
        selfishness = source.game.selfishness  # the restored players' types
    else:
        selfishness = fresh_types(game, train_config.seed)
    return RunPlan(checkpoint=checkpoint, source_dir=source_dir,
                   selfishness=tuple(float(s) for s in selfishness), overwrite=overwrite,
                   notes=tuple(notes))
