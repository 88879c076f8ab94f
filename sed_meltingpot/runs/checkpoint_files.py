"""Checkpoint folders of both engines (no Ray, no JAX): which are complete, the newest
complete one, writing one atomically, and moving an abandoned future aside on resume.

A checkpoint is complete when the file its engine writes last is there: the jax
engine's twin_checkpoint.json (training/jax/checkpoint.py writes it after its msgpack
files), RLlib's algorithm_state.pkl (`Checkpointable.save_to_path` writes
rllib_checkpoint.json first and algorithm_state.pkl after every component). A folder
without it is what a kill or a full disk in the middle of a save leaves behind: a
restore skips it and says so in one line (`newest_complete`), rather than calling it a
checkpoint of the other engine.

Both trainers save through `atomic_folder`: into a hidden sibling
`checkpoints/.tmp-iter_NNNNNN-<pid>`, fsynced, then renamed into place, so that a
checkpoint folder is complete or absent, and an existing one is replaced whole, never
rewritten file by file. A kill mid-save leaves only the `.tmp-` folder, which restores
ignore and the next save removes. A full disk (ENOSPC) becomes one `CheckpointSaveError`
line that names the newest complete checkpoint, with the temporary folder removed.

Resuming from an older checkpoint into the same run folder moves the later checkpoints
to `abandoned/<time>/` (`move_later_aside`), so the folder holds one history and the
next `--restore=<run>` continues this one, not the stale future. `close_writers` closes
the TensorBoard writers of a failing run (a full disk) without their own tracebacks.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

from sed_meltingpot.runs.run_files import ABANDONED_DIR, CHECKPOINT_DIR, TWIN_CHECKPOINT_MARKER

TMP_PREFIX = ".tmp-"  # a save in progress (or killed): never a checkpoint
ITER_PREFIX = "iter_"
# The file RLlib writes last (pickle by default, msgpack with use_msgpack).
RLLIB_LAST_FILES = ("algorithm_state.pkl", "algorithm_state.msgpack")
# Files an RLlib save writes before its last one (its metadata, its components).
_RLLIB_EARLY_FILES = frozenset({"rllib_checkpoint.json", "class_and_ctor_args.pkl",
                                "metadata.json", "learner_group", "env_runner"})
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)

Warn = Callable[[str], None]


class IncompleteCheckpointError(FileNotFoundError):
    """`--restore`/`--checkpoint` names a checkpoint folder whose save was interrupted."""


class CheckpointSaveError(OSError):
    """A save that failed for a reason the user must act on (a full disk); the message is
    one line naming the checkpoint and the newest complete one."""


# ------------------------------------------------------------------ reading
def checkpoint_engine(path: str) -> str | None:
    """'jax' or 'rllib' for a complete checkpoint folder, None for anything else."""
    if os.path.isfile(os.path.join(path, TWIN_CHECKPOINT_MARKER)):
        return "jax"
    if any(os.path.isfile(os.path.join(path, name)) for name in RLLIB_LAST_FILES):
        return "rllib"
    return None


def _names(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def looks_like_checkpoint(path: str) -> bool:
    """A folder that is, or was being written as, a checkpoint (not a run folder)."""
    if not os.path.isdir(path):
        return False
    if os.path.basename(os.path.normpath(path)).startswith(ITER_PREFIX):
        return True
    names = set(_names(path))
    return bool(names & _RLLIB_EARLY_FILES) or any(n.endswith(".msgpack") for n in names)


def incomplete_reason(path: str) -> str | None:
    """Why the checkpoint folder `path` is not a complete one, e.g. 'incomplete (no
    twin_checkpoint.json; a save was interrupted)'; None if it is complete."""
    if checkpoint_engine(path):
        return None
    names = set(_names(path))
    if not names:
        return "incomplete (empty; a save was interrupted)"
    if any(n.endswith(".msgpack") for n in names):
        marker = TWIN_CHECKPOINT_MARKER
    elif names & _RLLIB_EARLY_FILES:
        marker = RLLIB_LAST_FILES[0]
    else:
        return (f"incomplete (none of {TWIN_CHECKPOINT_MARKER}, {RLLIB_LAST_FILES[0]}; not a "
                "checkpoint, or a save was interrupted)")
    return f"incomplete (no {marker}; a save was interrupted)"


def _iteration(name: str) -> int | None:
    digits = name[len(ITER_PREFIX):] if name.startswith(ITER_PREFIX) else ""
    return int(digits) if digits.isdigit() else None


def iteration_folders(folder: str) -> list[tuple[int, str]]:
    """(iteration, name) of the `iter_N` folders in a checkpoints folder, oldest first
    (the hidden `.tmp-` folders of saves in progress are not among them)."""
    found = [(_iteration(n), n) for n in _names(folder)]
    return sorted((i, n) for i, n in found
                  if i is not None and os.path.isdir(os.path.join(folder, n)))


def _checkpoints_folder(path: str) -> str:
    """The folder holding the iter_N folders: `path/checkpoints`, or `path` itself."""
    inner = os.path.join(path, CHECKPOINT_DIR)
    return inner if os.path.isdir(inner) else path


def newest_complete(path: str, *, warn: Warn | None = None, engine: str | None = None
                    ) -> str:
    """`path` itself if it is a complete checkpoint, else the newest complete one in
    `path/checkpoints` (or in `path`, a checkpoints folder). Each newer incomplete folder
    is skipped with one `warn` line ("skipping <folder>: incomplete (no
    twin_checkpoint.json; a save was interrupted)"). `engine` ('jax', 'rllib') counts
    only that engine's checkpoints. IncompleteCheckpointError if `path` is itself an
    incomplete checkpoint; FileNotFoundError if there is no complete one."""
    if checkpoint_engine(path) and (engine is None or checkpoint_engine(path) == engine):
        return path
    if looks_like_checkpoint(path) and not checkpoint_engine(path):
        parent = os.path.dirname(os.path.normpath(path))
        try:
            newest = newest_complete(parent, engine=engine)
        except FileNotFoundError:
            newest = "none"
        raise IncompleteCheckpointError(f"{path} is {incomplete_reason(path)}; the newest "
                                        f"complete checkpoint beside it is {newest}")
    folder = _checkpoints_folder(path)
    skipped = []
    for _, name in reversed(iteration_folders(folder)):
        candidate = os.path.join(folder, name)
        kind = checkpoint_engine(candidate)
        if kind is None:
            skipped.append(candidate)
            if warn:
                warn(f"skipping {candidate}: {incomplete_reason(candidate)}")
            continue
        if engine is None or kind == engine:
            return candidate
    what = f"{engine}-engine checkpoint" if engine else "checkpoint"
    extra = f"; skipped {len(skipped)} incomplete" if skipped else ""
    raise FileNotFoundError(f"no complete {what} at {path!r} (looked for {CHECKPOINT_DIR}/"
                            f"{ITER_PREFIX}N folders{extra})")


# ------------------------------------------------------------------ writing
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return False
    return True


def clean_temps(folder: str) -> list[str]:
    """Removes the `.tmp-` folders that saves of this process or of dead processes left
    in `folder` (killed mid-save); returns their names. Those of a live process (its pid
    is the name's last part) are left alone."""
    removed = []
    for name in _names(folder):
        if not name.startswith(TMP_PREFIX):
            continue
        pid = name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _pid_alive(int(pid)):
            continue
        shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
        removed.append(name)
    return removed


def _fsync(path: str, *, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:  # some file systems cannot fsync a folder; data errors count
        if not directory or e.errno in _NO_SPACE:
            raise
    finally:
        os.close(fd)


def _fsync_tree(root: str) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            _fsync(os.path.join(folder, name))
        _fsync(folder, directory=True)


def no_space_message(path: str) -> str:
    """The one line for a full disk while saving the checkpoint `path`."""
    try:
        newest = newest_complete(os.path.dirname(path))
    except FileNotFoundError:
        newest = "none (no checkpoint of this run was completed)"
    return (f"no space left on the device while saving checkpoint {path}: the run stopped; "
            f"the newest complete checkpoint is {newest}")


@contextlib.contextmanager
def atomic_folder(path: str) -> Iterator[str]:
    """Yields a temporary sibling folder of `path` to write a checkpoint into; when the
    block ends without error, fsyncs it and renames it to `path` (an existing `path` is
    renamed aside first, then deleted). On any error the temporary folder is removed;
    ENOSPC (or a full quota) is raised as one-line CheckpointSaveError."""
    final = os.path.abspath(path)
    parent, name = os.path.dirname(final), os.path.basename(final)
    tmp = os.path.join(parent, f"{TMP_PREFIX}{name}-{os.getpid()}")
    aside = os.path.join(parent, f"{TMP_PREFIX}replaced-{name}-{os.getpid()}")
    try:
        os.makedirs(parent, exist_ok=True)
        clean_temps(parent)
        os.makedirs(tmp)
        yield tmp
        _fsync_tree(tmp)
        if os.path.lexists(final):
            os.rename(final, aside)
            os.rename(tmp, final)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.rename(tmp, final)
        _fsync(parent, directory=True)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and e.errno in _NO_SPACE:
            raise CheckpointSaveError(no_space_message(final)) from e
        raise


# ------------------------------------------------------------------ resuming
def move_later_aside(run_dir: str, iteration: int, *, warn: Warn | None = None,
                     clock: Callable[[], float] = time.time) -> str | None:
    """Moves the run folder's checkpoints after `iteration` (the one a resume restored)
    to `run_dir/abandoned/<time>/`, so that the folder holds one history; says so in one
    `warn` line and returns that folder (None when there were none)."""
    folder = os.path.join(run_dir, CHECKPOINT_DIR)
    later = [name for i, name in iteration_folders(folder) if i > iteration]
    if not later:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(clock()))
    target = os.path.join(run_dir, ABANDONED_DIR, stamp)
    suffix = 1
    while os.path.exists(target):
        suffix += 1
        target = os.path.join(run_dir, ABANDONED_DIR, f"{stamp}-{suffix}")
    os.makedirs(target)
    for name in later:
        os.rename(os.path.join(folder, name), os.path.join(target, name))
    if warn:
        span = later[0] if len(later) == 1 else f"{later[0]} .. {later[-1]}"
        warn(f"resumed from iteration {iteration}: moved {len(later)} later checkpoint(s) "
             f"({span}, the history this resume abandons) to {target}")
    return target


# ------------------------------------------------------------------ failing runs
def close_writers(writers: list[Any], *, quietly: bool) -> None:
    """Closes the TensorBoard writers. `quietly` (the run is failing, e.g. a full disk):
    their errors are dropped and a writer whose last flush fails is abandoned, so that
    the error that stopped the run is the one reported, not tensorboardX's own
    tracebacks (its close, its exit hook, its thread's "handle is closed")."""
    for writer in writers:
        if writer is None:
            continue
        if not quietly:
            writer.close()
            continue
        try:
            writer.close()
        except Exception:  # noqa: BLE001 - abandoned below; the run's error is raised
            abandon_writer(writer)


def abandon_writer(writer: Any) -> None:
    """Stops a tensorboardX writer's thread and marks it closed without flushing (its
    file cannot be written), so its exit hook has nothing left to fail on."""
    for file_writer in list((getattr(writer, "all_writers", None) or {}).values()):
        events = getattr(file_writer, "event_writer", None)
        if events is None or getattr(events, "_closed", True):
            continue
        events._closed = True
        with contextlib.suppress(Exception):
            events._worker.stop()
        with contextlib.suppress(Exception):
            events._event_queue.close()
