"""Checkpoints that a kill, a full disk or a resume cannot corrupt (issue 31, items 2, 4
and 8): `runs/checkpoint_files.py`, the jax engine's `training/jax/checkpoint.py`, the
RLlib trainer's `_save`, `runs/run_plan.py`'s restore checks and the diagnosis of a
damaged RLlib module in `evaluation/runs.py`.

A save is interrupted by an exception after its first file (an in-process stand-in for
a kill) or by a real SIGKILL in a child process; a full disk is a file whose `write`
raises ENOSPC (and, in the script test, a TensorBoard writer that cannot flush either,
as on a real full disk). The script tests run `scripts/train.py --engine=jax` for real
at quickstart size (the compile is cached after the first run).
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.runs import checkpoint_files, run_plan
from sed_meltingpot.runs.train_config import TrainConfig
from sed_meltingpot.training.jax import checkpoint as ckpt
from sed_meltingpot.training.jax import networks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = networks.NetworkSpec(image_shape=(11, 11, 3), num_features=6, num_logits=8,
                            pixels_per_tile=1, conv_channels=(8, 16), hidden=32)
GAME = GameConfig(num_players=3, episode_length=50, tax_period=25)
SKIP_LINE = "incomplete (no twin_checkpoint.json; a save was interrupted)"


def save(path: str, iteration: int, seed: int = 0) -> str:
    return ckpt.save(path, iteration=iteration,
                     players_params=networks.init_params(SPEC, jax.random.PRNGKey(seed)),
                     principal_params=None, train_state={"iteration": np.int32(iteration)},
                     players_spec=SPEC, principal_spec=None)


def make_run(folder: str) -> str:
    """A jax-engine run folder (run_config.json) with checkpoint iter_000001."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "run_config.json"), "w") as f:
        json.dump({"engine": "jax", "game": {"num_players": 3, "episode_length": 50,
                                             "tax_period": 25},
                   "train": {"pixels_per_tile": 1, "frame_stack": 1},
                   "selfishness": [0.2, 0.9, 0.5]}, f)
    save(os.path.join(folder, "checkpoints", "iter_000001"), 1)
    return folder


def interrupt_after_first_file(monkeypatch, error: BaseException) -> None:
    """The save's second msgpack serialisation raises `error`: its first file is on disk."""
    real, calls = ckpt.serialization.to_bytes, []

    def to_bytes(tree):
        calls.append(1)
        if len(calls) > 1:
            raise error
        return real(tree)

    monkeypatch.setattr(ckpt.serialization, "to_bytes", to_bytes)


def visible(folder: str) -> list[str]:
    return sorted(os.listdir(folder))


# ------------------------------------------------------------- interrupted saves
def test_a_save_interrupted_after_its_first_file_leaves_no_checkpoint(tmp_path, monkeypatch):
    run = make_run(str(tmp_path / "run"))
    folder = os.path.join(run, "checkpoints")
    interrupt_after_first_file(monkeypatch, KeyboardInterrupt("killed"))
    with pytest.raises(KeyboardInterrupt):
        save(os.path.join(folder, "iter_000002"), 2)
    assert visible(folder) == ["iter_000001"]  # neither iter_000002 nor a temporary folder
    assert run_plan.latest_checkpoint(run) == os.path.join(folder, "iter_000001")


def test_an_interrupted_save_over_an_existing_checkpoint_keeps_it_whole(tmp_path,
                                                                        monkeypatch):
    path = save(str(tmp_path / "checkpoints" / "iter_000001"), 1, seed=0)
    _, before = ckpt.load_params(path, "players")
    interrupt_after_first_file(monkeypatch, RuntimeError("killed"))
    with pytest.raises(RuntimeError):
        save(path, 1, seed=1)  # another players' network, then the kill
    _, after = ckpt.load_params(path, "players")
    for a, b in zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    assert visible(str(tmp_path / "checkpoints")) == ["iter_000001"]


KILL_DURING_SAVE = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    import test_checkpoints as t
    from sed_meltingpot.training.jax import checkpoint as ckpt
    real, calls = ckpt.serialization.to_bytes, []
    def to_bytes(tree):
        calls.append(1)
        if len(calls) > 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(tree)
    ckpt.serialization.to_bytes = to_bytes
    t.save(os.path.join({folder!r}, "iter_000002"), 2)
""")


def test_a_kill_during_save_leaves_only_a_hidden_folder_that_restore_ignores(tmp_path):
    """A real SIGKILL mid-save; then an iter_N folder without its marker (what a kill left
    before saves were atomic) is skipped with one line, and the next save cleans up."""
    run = make_run(str(tmp_path / "run"))
    folder = os.path.join(run, "checkpoints")
    code = KILL_DURING_SAVE.format(tests=os.path.dirname(__file__), folder=folder)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]
    names = visible(folder)
    assert names[1:] == ["iter_000001"] and names[0].startswith(".tmp-iter_000002-"), names
    first = os.path.join(folder, "iter_000001")
    assert run_plan.latest_checkpoint(run) == first

    half = os.path.join(folder, "iter_000003")
    os.makedirs(half)
    shutil.copy(os.path.join(first, ckpt.PLAYERS_FILE), half)
    lines: list[str] = []
    assert run_plan.latest_checkpoint(run, warn=lines.append) == first
    assert lines == [f"skipping {half}: {SKIP_LINE}"]
    plan = run_plan.plan_run(GAME, TrainConfig(pixels_per_tile=1, frame_stack=1),
                             run, restore=run, engine="jax")
    assert plan.checkpoint == first and plan.notes == (lines[0],)
    with pytest.raises(run_plan.RunSetupError, match="iter_000003 is incomplete .* the newest "
                       "complete checkpoint beside it is .*iter_000001"):
        run_plan.plan_run(GAME, TrainConfig(pixels_per_tile=1, frame_stack=1), run,
                          restore=half, engine="jax")

    save(os.path.join(folder, "iter_000004"), 4)  # removes the dead save's folder
    assert visible(folder) == ["iter_000001", "iter_000003", "iter_000004"]


def test_evaluate_loads_the_newest_complete_checkpoint(tmp_path):
    from sed_meltingpot import evaluation

    run = make_run(str(tmp_path / "run"))
    half = os.path.join(run, "checkpoints", "iter_000002")
    os.makedirs(half)
    lines: list[str] = []
    loaded = evaluation.load_run(run, warn=lines.append)
    assert loaded.checkpoint.endswith("iter_000001")
    assert lines == [f"skipping {half}: incomplete (empty; a save was interrupted)"]


def test_a_damaged_file_is_named_by_evaluate(tmp_path):
    from sed_meltingpot import evaluation

    run = make_run(str(tmp_path / "run"))
    players = os.path.join(run, "checkpoints", "iter_000001", ckpt.PLAYERS_FILE)
    with open(players, "r+b") as f:
        f.truncate(100)
    with pytest.raises(evaluation.CheckpointError, match=f"{players} is damaged or truncated"):
        evaluation.load_run(run)


# ------------------------------------------------------------------- full disk
class FullDisk:
    """`open` for checkpoint.py: files after the first `room` ones cannot be written."""

    def __init__(self, room: int) -> None:
        self.room = room

    def __call__(self, path, mode="r", *args, **kwargs):
        f = open(path, mode, *args, **kwargs)
        if "w" not in mode:
            return f
        self.room -= 1
        return f if self.room >= 0 else _NoRoom(f)


class _NoRoom:
    """A file opened for writing on a full disk: every write raises ENOSPC."""

    def __init__(self, f) -> None:
        self._f = f

    def write(self, data) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> _NoRoom:
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()


def test_a_full_disk_is_one_line_naming_the_newest_complete_checkpoint(tmp_path,
                                                                       monkeypatch):
    run = make_run(str(tmp_path / "run"))
    folder = os.path.join(run, "checkpoints")
    monkeypatch.setattr(ckpt, "open", FullDisk(room=1), raising=False)
    path = os.path.join(folder, "iter_000002")
    with pytest.raises(checkpoint_files.CheckpointSaveError) as caught:
        save(path, 2)
    assert str(caught.value) == (
        f"no space left on the device while saving checkpoint {path}: the run stopped; the "
        f"newest complete checkpoint is {os.path.join(folder, 'iter_000001')}")
    assert visible(folder) == ["iter_000001"]  # the temporary folder is gone


# ------------------------------------------------------------------ RLlib saves
class FakeAlgo:
    """`algo.save_to_path` as RLlib writes it: rllib_checkpoint.json first,
    algorithm_state.pkl last; `fail` raises in between (a kill, a full disk)."""

    def __init__(self, iteration: int, fail: BaseException | None = None) -> None:
        self.iteration, self.fail = iteration, fail

    def save_to_path(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "rllib_checkpoint.json"), "w") as f:
            f.write("{}")
        if self.fail:
            raise self.fail
        with open(os.path.join(path, "algorithm_state.pkl"), "wb") as f:
            pickle.dump({}, f)


def test_the_rllib_save_is_atomic_and_restore_skips_a_half_written_one(tmp_path):
    from sed_meltingpot.training.rllib.trainer import _save

    run = str(tmp_path / "run")
    folder = os.path.join(run, "checkpoints")
    assert _save(FakeAlgo(2), run) == os.path.join(folder, "iter_000002")
    with pytest.raises(KeyboardInterrupt):
        _save(FakeAlgo(3, KeyboardInterrupt()), run)
    with pytest.raises(checkpoint_files.CheckpointSaveError, match="newest complete "
                       "checkpoint is .*iter_000002"):
        _save(FakeAlgo(4, OSError(errno.ENOSPC, "No space left on device")), run)
    assert visible(folder) == ["iter_000002"]
    # A folder that an RLlib save without this wrapper left half-written.
    half = os.path.join(folder, "iter_000005")
    os.makedirs(half)
    open(os.path.join(half, "rllib_checkpoint.json"), "w").close()
    lines: list[str] = []
    assert run_plan.latest_checkpoint(run, warn=lines.append) == os.path.join(
        folder, "iter_000002")
    assert lines == [f"skipping {half}: incomplete (no algorithm_state.pkl; a save was "
                     "interrupted)"]


POISON_RAY = "import sys\nsys.modules['ray'] = None\n"


def test_an_rllib_restore_of_a_jax_run_is_refused_before_ray(tmp_path):
    """Ray cannot even be imported in the child: the refusal comes before it."""
    run = make_run(str(tmp_path / "run"))
    code = POISON_RAY + (
        "import runpy\n"
        f"sys.argv = ['train.py', '--engine=rllib', '--restore={run}', "
        f"'--output_dir={tmp_path / 'other'}', '--num_players=3', '--episode_length=50', "
        "'--tax_period=25', '--frame_stack=1', '--pixels_per_tile=1']\n"
        "runpy.run_path('scripts/train.py', run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last == (f"--restore={run!r}: {run}/checkpoints/iter_000001 is a jax-engine "
                    "checkpoint (twin_checkpoint.json), which --engine=rllib cannot restore; "
                    "restore it with --engine=jax"), done.stderr[-2000:]
    assert "Traceback" not in done.stderr


# --------------------------------------------------------- the diagnosis path
def test_the_damaged_module_diagnosis_unpickles_nothing(tmp_path, monkeypatch):
    """A module folder whose state pickle is cut short, beside a pickle that would run
    code if loaded: the diagnosis names the cut file, and no pickle is loaded."""
    from sed_meltingpot.evaluation import runs

    module = tmp_path / "players"
    module.mkdir()
    (module / "metadata.json").write_text("{}")
    marker = tmp_path / "code_ran"
    # open(marker, "w") when unpickled (a well-formed pickle: the diagnosis must pass it)
    hostile = (b"\x80\x04cbuiltins\nopen\n(S" + repr(str(marker)).encode() + b"\nS'w'\ntR.")
    (module / "class_and_ctor_args.pkl").write_bytes(hostile)
    (module / "module_state.pkl").write_bytes(pickle.dumps({"w": list(range(100))})[:40])

    def refuse(*args, **kwargs):
        raise AssertionError("the diagnosis unpickled a file")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    found = runs._unreadable_file(str(module))
    assert found == f"{module / 'module_state.pkl'} is damaged or truncated"
    assert not marker.exists()
    (module / "module_state.pkl").unlink()
    assert runs._unreadable_file(str(module)) == f"{module / 'module_state.pkl'} is missing"


# ------------------------------------------------------ train.py, for real (jax)
TRAIN = ("scripts/train.py", "--engine=jax", "--preset=quickstart", "--num_envs=2",
         "--checkpoint_every=1")


def train(*args: str, preamble: str = "") -> subprocess.CompletedProcess:
    code = "import sys\n" + preamble + (
        "import runpy\n"
        f"sys.argv = {list(TRAIN) + list(args)!r}\n"
        "runpy.run_path('scripts/train.py', run_name='__main__')\n")
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory) -> str:
    """A 4-iteration quickstart run with a checkpoint at every iteration."""
    out = str(tmp_path_factory.mktemp("jax") / "run")
    done = train(f"--output_dir={out}", "--num_iterations=4")
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_resuming_from_an_older_checkpoint_moves_the_later_ones_aside(jax_run, tmp_path):
    run = str(tmp_path / "run")
    shutil.copytree(jax_run, run)
    folder = os.path.join(run, "checkpoints")
    done = train(f"--output_dir={run}", f"--restore={folder}/iter_000002",
                 "--num_iterations=3")
    assert done.returncode == 0, done.stderr[-3000:]
    (moved,) = [line for line in done.stdout.splitlines() if "later checkpoint" in line]
    abandoned = os.path.join(run, "abandoned")
    (stamp,) = os.listdir(abandoned)
    assert moved == (f"resumed from iteration 2: moved 2 later checkpoint(s) (iter_000003 .. "
                     f"iter_000004, the history this resume abandons) to "
                     f"{os.path.join(abandoned, stamp)}")
    assert visible(os.path.join(abandoned, stamp)) == ["iter_000003", "iter_000004"]
    assert visible(folder) == ["iter_000001", "iter_000002", "iter_000003"]

    done = train(f"--output_dir={run}", f"--restore={run}", "--num_iterations=4")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"restored {folder}/iter_000003 at iteration 3" in done.stdout
    with open(os.path.join(run, "progress.jsonl")) as f:
        assert [json.loads(line)["iteration"] for line in f] == [1, 2, 3, 4]


def test_train_restore_names_a_damaged_file_in_one_line(jax_run, tmp_path):
    run = str(tmp_path / "run")
    shutil.copytree(jax_run, run)
    state = os.path.join(run, "checkpoints", "iter_000004", ckpt.STATE_FILE)
    with open(state, "r+b") as f:
        f.truncate(1000)
    done = train(f"--output_dir={run}", f"--restore={run}", "--num_iterations=5")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        f"--restore={run!r}: {state} is damaged or truncated (ValueError: Unpack failed: "
        "incomplete input)")
    assert "Traceback" not in done.stderr


FULL_DISK = textwrap.dedent("""
    import errno, os, sys
    sys.path.insert(0, {tests!r})
    from test_checkpoints import FullDisk
    from tensorboardX import record_writer
    from sed_meltingpot.training.jax import checkpoint as ckpt
    full = FullDisk(room={room})  # the first checkpoint's files fit, nothing after them
    ckpt.open = full
    flush = record_writer.RecordWriter.flush
    def flush_unless_full(self):  # TensorBoard's file is on the same full disk
        if full.room < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return flush(self)
    record_writer.RecordWriter.flush = flush_unless_full
""")


def test_a_full_disk_stops_train_py_with_one_line(jax_run, tmp_path):
    files = len(os.listdir(os.path.join(jax_run, "checkpoints", "iter_000001")))
    run = str(tmp_path / "run")
    done = train(f"--output_dir={run}", "--num_iterations=3", preamble=FULL_DISK.format(
        tests=os.path.dirname(__file__), room=files))
    assert done.returncode == 1, done.stderr[-3000:]
    folder = os.path.join(run, "checkpoints")
    assert done.stderr.strip().splitlines() == [
        f"error: no space left on the device while saving checkpoint {folder}/iter_000002: "
        f"the run stopped; the newest complete checkpoint is {folder}/iter_000001"]
    assert visible(folder) == ["iter_000001"]
