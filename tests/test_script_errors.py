"""The scripts answer bad input with one line naming the flag (issue 11,
section 4): no traceback, and before any work starts.

Each script runs once, in `tests/script_harness.py`, over all its cases
(absl flags are global to a process); a case is "usage" when the script
raised what `absl.app.run` prints as a one-line error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESS = os.path.join(ROOT, "tests", "script_harness.py")
# Several script processes each: minutes on a loaded 2-core machine.
pytestmark = pytest.mark.slow
MODULE_STATE = os.path.join("learner_group", "learner", "rl_module", "players",
                            "module_state.pkl")


def run_script(script: str, argvs: list[list[str]], cwd: str) -> list[dict[str, str]]:
    """Results of `tests/script_harness.py` for `scripts/<script>`."""
    proc = subprocess.run(
        [sys.executable, HARNESS, os.path.join(ROOT, "scripts", script)],
        input=json.dumps(argvs), capture_output=True, text=True, cwd=cwd, timeout=900)
    assert "@@RESULTS@@" in proc.stdout, proc.stderr[-4000:]
    return json.loads(proc.stdout.split("@@RESULTS@@")[-1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A good run folder, one without run_config.json, one whose players'
    module state is truncated, and a plain file (an unwritable parent)."""
    from fake_run import make_run

    from sed_meltingpot.game.config import GameConfig

    base = tmp_path_factory.mktemp("runs")
    good = str(base / "good")
    checkpoint = make_run(good, GameConfig(episode_length=100, tax_period=50))
    no_config = str(base / "no_config")
    shutil.copytree(good, no_config)
    os.remove(os.path.join(no_config, "run_config.json"))
    truncated = str(base / "truncated")
    shutil.copytree(good, truncated)
    state = os.path.join(truncated, os.path.relpath(checkpoint, good), MODULE_STATE)
    size = os.path.getsize(state)
    with open(state, "r+b") as f:
        f.truncate(size // 2)
    (base / "folder.mp4").mkdir()
    a_file = str(base / "a_file")
    with open(a_file, "w") as f:
        f.write("not a folder")
    return {"good": good, "no_config": no_config, "truncated": truncated,
            "truncated_file": state, "file": a_file, "base": str(base),
            "folder_mp4": str(base / "folder.mp4")}


def _check(results, cases):
    for (argv, outcome, needles), result in zip(cases, results, strict=True):
        assert result["outcome"] == outcome, (argv, result)
        for needle in needles:
            assert needle in result["message"], (argv, needle, result["message"])
        if outcome == "usage":
            assert "\n" not in result["message"].strip(), (argv, result["message"])


def folder_that_access_calls_writable() -> str | None:
    """A folder that `os.access` calls writable but where writing fails (as root,
    /sys), or None on a machine without one."""
    import tempfile

    for folder in ("/sys", "/proc"):
        if not (os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)):
            continue
        try:
            tempfile.NamedTemporaryFile(dir=folder).close()
        except OSError:
            return folder
    return None


def test_train_rejects_bad_inputs_up_front(runs):
    out = os.path.join(runs["base"], "train_out")
    lying = folder_that_access_calls_writable()
    cases = [
        *([([f"--output_dir={lying}/sed_run"], "usage", ["--output_dir=", "not writable"]),
           ([f"--output_dir={lying}/sed_run", "--engine=jax"], "usage",
            ["--output_dir=", "not writable"])] if lying else []),
        (["--seed=-1"], "usage", ["--seed=-1", "non-negative"]),
        ([f"--output_dir={out}", "--num_players=63"], "usage",
         ["num_players=63 is outside [1, 62]", "spawn points"]),
        ([f"--output_dir={out}", "--map=large", "--num_players=200"], "usage",
         ["num_players=200"]),
        ([f"--output_dir={runs['file']}/run"], "usage", ["--output_dir=", "not writable"]),
        ([f"--output_dir={out}", "--num_players=62"], "ok", ["num_players=62"]),
    ]
    _check(run_script("train.py", [c[0] for c in cases], runs["base"]), cases)
    assert not os.path.exists(out)  # a dry run writes nothing


def test_evaluate_and_render_reject_bad_inputs(runs):
    out = os.path.join(runs["base"], "eval_out")
    video = os.path.join(runs["base"], "video.mp4")
    evaluate_cases = [
        (["--seed=-1"], "usage", ["--seed=-1"]),
        (["--checkpoint=/nonexistent/run"], "usage",
         ["--checkpoint=/nonexistent/run", "does not exist"]),
        ([f"--checkpoint={runs['no_config']}", f"--output_dir={out}"], "usage",
         ["run_config.json"]),
        ([f"--checkpoint={runs['truncated']}", f"--output_dir={out}"], "usage",
         [runs["truncated_file"], "truncated"]),
        ([f"--output_dir={runs['file']}/eval"], "usage", ["--output_dir=", "not writable"]),
        ([f"--output_dir={out}", "--num_players=63"], "usage", ["num_players=63"]),
        ([f"--checkpoint={runs['good']}", f"--output_dir={out}"], "ok", ["dry run"]),
    ]
    _check(run_script("evaluate.py", [c[0] for c in evaluate_cases], runs["base"]),
           evaluate_cases)
    render_cases = [
        (["--seed=-1"], "usage", ["--seed=-1"]),
        ([f"--output={runs['file']}/v.mp4"], "usage", ["--output=", "not writable"]),
        ([f"--output={runs['folder_mp4']}"], "usage", ["is a folder"]),
        ([f"--checkpoint={runs['truncated']}", f"--output={video}"], "usage",
         [runs["truncated_file"]]),
        ([f"--checkpoint={runs['good']}", f"--output={video}"], "ok", ["dry run"]),
    ]
    _check(run_script("render_video.py", [c[0] for c in render_cases], runs["base"]),
           render_cases)


def test_a_bad_checkpoint_prints_one_line_and_no_traceback(tmp_path):
    """End to end through absl.app.run, as a user sees it."""
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "evaluate.py"),
         f"--checkpoint={tmp_path}/missing", f"--output_dir={tmp_path}/eval"],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=600)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"--checkpoint={tmp_path}/missing: '{tmp_path}/missing' does not exist" in (
        proc.stderr + proc.stdout)
