"""The README's first command: a quiet run that shows learning (issue 29, item 4).

* The progress line: "-" (not "nan") for a figure no episode has measured yet, and
  the estimated time left (ETA), checked against hand computations.
* The learning-curve PNG the run ends with: the curves drawn are the log's numbers.
* The quickstart preset and the flags that override it (`--dry_run`).
* Quiet: the start-up lines are filtered out, other stderr lines kept in order.
* The command itself (a tiny budget in the default run; the README's budget, and the
  RLlib engine, marked slow): no start-up noise, the PNG and checkpoint it names
  exist, and (at the README's budget) apples per episode rise from the first tenth of
  the training to the last.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from sed_meltingpot import cli
from sed_meltingpot.analysis import plotting
from sed_meltingpot.runs import quiet, runlog
from sed_meltingpot.runs.train_config import preset, preset_game

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "scripts", "train.py")
# The README's first command (after `bash scripts/setup_env.sh &&`), but for the
# output folder; the RLlib engine is one flag away (--engine=rllib).
QUICKSTART = ["--engine=jax", "--preset=quickstart", "--overwrite"]
# What the start-up printed before issue 29 (TensorFlow, CUDA, Ray, absl, JAX):
# written here from the lines seen, independent of quiet.NOISE. A line of the run
# matching any of them fails the test.
NOISE_SEEN = [re.compile(p) for p in (
    r"oneDNN", r"(?i)cuda", r"cuInit", r"TF_CPP", r"absl", r"Could not find", r"\bRay\b",
    r"(?i)\bray\b", r"raylet", r"\(pid=", r"^[IWEF]\d{4} ", r"^\[\d{4}-\d\d-\d\d ",
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r"WARNING", r"(?i)deprecat", r"(?i)token",
    r"gputil", r"new API stack", r"libtpu", r"\bnan\b")]


# ------------------------------------------------------------ the progress line
@pytest.mark.parametrize("missing", [None, math.nan, "absent"])
def test_a_figure_no_episode_measured_prints_a_dash(missing):
    record = {"iteration": 1, "game_steps": 981, "game_steps_per_s": 47.14}
    if missing != "absent":
        record.update({key: missing for key in (
            "objective", "eta", "productivity", "rate_b0", "rate_b1", "rate_b2", "tax_cap")})
    line = runlog.format_progress(record, 3)
    # Written by hand: each "-" right-aligned in its number's width (7.2f: 7, 6.1f: 6).
    assert line == ("iter    1 | game steps      981 (  47.1/s) | objective       - eta - | "
                    "apples      - | rates -/-/- | cap -")
    assert "nan" not in line


def test_format_number():
    assert runlog.format_number(3.14159, "7.2f") == "   3.14"
    assert runlog.format_number(None, "7.2f") == "      -"
    assert runlog.format_number(math.nan, ".2f") == "-"
    assert runlog.format_number([1.0, 2.0], "6.1f") == "     -"  # a list is not a figure
    assert runlog.format_number(True, ".2f") == "-"
    assert runlog.format_number(0, "6.1f") == "   0.0"


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (42.4, "42s"), (59.6, "1m00s"), (185, "3m05s"), (3599.4, "59m59s"),
    (3725, "1h02m"), (-3, "0s")])
def test_format_duration(seconds, text):
    assert runlog.format_duration(seconds) == text


def test_eta_is_the_mean_time_per_iteration_so_far_times_the_iterations_left(tmp_path):
    times = iter([100.0, 110.0, 130.0])
    log = runlog.ProgressLog(str(tmp_path), clock=lambda: next(times))
    assert log.eta_s(10) is None  # nothing run yet
    first = log.add({"iteration": 1, "game_steps": 100, "episodes_this_iter": 1,
                     "objective": 1.0})
    assert log.eta_s(10) == pytest.approx(9 * 10.0 / 1)  # 10 s for 1 iteration, 9 left
    second = log.add({"iteration": 2, "game_steps": 200, "episodes_this_iter": 0})
    assert log.eta_s(10) == pytest.approx(8 * 30.0 / 2)  # 30 s for 2, 8 left: 120 s
    assert log.eta_s(2) == 0.0
    line = runlog.format_progress(second, 3, eta_s=log.eta_s(10))
    assert line.endswith("(stale) | ETA 2m00s")
    assert runlog.format_progress(first, 3).endswith("cap -")  # no eta_s, no ETA


def test_eta_of_a_resumed_run_counts_only_its_own_iterations(tmp_path):
    with open(tmp_path / runlog.PROGRESS_FILE, "w") as f:
        for k in range(1, 6):  # 5 iterations, 100 s each, run before the resume
            f.write(json.dumps({"iteration": k, "game_steps": 10 * k,
                                "wall_time_s": 100.0 * k}) + "\n")
    times = iter([500.0, 504.0])
    log = runlog.ProgressLog(str(tmp_path), resume_iteration=5, clock=lambda: next(times))
    assert log.eta_s(10) is None  # restored, no iteration of its own yet
    log.add({"iteration": 6, "game_steps": 60, "episodes_this_iter": 1})
    assert log.eta_s(10) == pytest.approx(4 * 4.0)  # 4 s for 1 iteration, 4 left


def test_eta_seconds():
    assert runlog.eta_seconds(30.0, 3, 7) == pytest.approx(70.0)
    assert runlog.eta_seconds(30.0, 0, 7) is None
    assert runlog.eta_seconds(30.0, 3, -1) == 0.0


def test_summary_prints_a_dash_for_a_missing_figure():
    text = runlog.format_summary({"iteration": 1, "game_steps": 981, "num_brackets": 2,
                                  "objective": None, "eta": math.nan, "rate_b0": 0.25})
    assert "objective W_eta per episode -" in text
    assert "voted eta -;" in text and "bracket (last episodes): 0.250, -" in text
    assert "nan" not in text and "n/a" not in text


# ------------------------------------------------------------ the learning curve
def curve_records() -> list[dict]:
    """Six iterations of 100 game steps; iteration 2 ended no episode (stale: it
    repeats iteration 1's figures); the principal joins at iteration 3."""
    records = []
    for k in range(1, 7):
        stale = k == 2
        source = 1 if stale else k
        records.append({
            "iteration": k, "game_steps": 100 * k, "metrics_stale": stale,
            "productivity": 20.0 + 5 * source, "objective": 5.0 + source,
            "rate_b0": 0.1 * source, "rate_b1": 0.05 * source, "rate_b2": 0.0,
            "tax_cap": min(1.0, 0.25 * source), "principal_active": float(k >= 3)})
    return records


def _by_label(ax) -> dict[str, np.ndarray]:
    return {line.get_label(): line.get_xydata() for line in ax.get_lines()}


def test_learning_curve_draws_apples_objective_and_rates_of_the_episodes(tmp_path):
    fig, axes, drawn = plotting.learning_curve_figure([("quick", curve_records())])
    assert drawn == [True, True, True] and len(axes) == 3
    steps = [100, 300, 400, 500, 600]  # iteration 2 (stale) left out
    apples = _by_label(axes[0])
    np.testing.assert_allclose(apples["quick"], [[100, 25], [300, 35], [400, 40],
                                                 [500, 45], [600, 50]])
    np.testing.assert_allclose(_by_label(axes[1])["quick"],
                               [[s, y] for s, y in zip(steps, [6, 8, 9, 10, 11], strict=True)])
    rates = _by_label(axes[2])
    np.testing.assert_allclose(rates["quick: bracket 0"][:, 1], [0.1, 0.3, 0.4, 0.5, 0.6])
    np.testing.assert_allclose(rates["quick: bracket 1"][:, 1],
                               [0.05, 0.15, 0.2, 0.25, 0.3])
    np.testing.assert_allclose(rates["quick: bracket 2"][:, 0], steps)
    np.testing.assert_allclose(rates["quick: cap"][:, 1], [0.25, 0.75, 1.0, 1.0, 1.0])
    # The principal joins at iteration 3 (300 game steps): a vertical line there.
    np.testing.assert_allclose(apples["quick: principal joins"][:, 0], [300, 300])
    assert "Apples per episode" in axes[0].get_title()
    assert axes[2].get_xlabel() == plotting.X_LABEL

    path = plotting.plot_learning_curve([("quick", curve_records())],
                                        str(tmp_path / "curve.png"), width=640, height=480)
    from PIL import Image

    assert Image.open(path).size == (640, 480)


def test_learning_curve_of_an_rllib_log_has_no_principal_line():
    records = [{k: v for k, v in r.items() if k != "principal_active"}
               for r in curve_records()]
    _, axes, _ = plotting.learning_curve_figure([("rl", records)])
    assert not any("joins" in label for label in _by_label(axes[0]))


def test_plot_runs_writes_the_learning_curve_too(tmp_path):
    os.makedirs(tmp_path / "run")
    with open(tmp_path / "run" / runlog.PROGRESS_FILE, "w") as f:
        for record in curve_records():
            f.write(json.dumps(record) + "\n")
    paths = plotting.plot_runs([str(tmp_path / "run")], str(tmp_path / "plots"))
    assert str(tmp_path / "plots" / "learning_curve.png") in paths


# ------------------------------------------------------------ the preset and its flags
def test_quickstart_preset_is_fast_with_one_frame_on_the_small_game():
    assert preset("quickstart") == {**preset("fast"), "frame_stack": 1}
    assert preset_game("quickstart") == {"num_players": 4, "episode_length": 200,
                                         "tax_period": 50}
    assert preset_game("fast") == {} and preset_game("paper") == {}
    with pytest.raises(ValueError, match="preset"):
        preset_game("huge")


def test_typed_flags_override_a_preset_and_untyped_ones_keep_it():
    from absl import flags

    from sed_meltingpot.game.config import GameConfig

    values = flags.FlagValues()
    names = cli.define_config_flags(GameConfig, flag_values=values)
    values(["prog", "--num_players=5"])
    base = GameConfig(num_players=4, episode_length=200, tax_period=50)
    game = cli.replace_from_typed_flags(base, values, names)
    assert (game.num_players, game.episode_length, game.tax_period) == (5, 200, 50)
    # The older reader takes every flag's value, defaults included: the preset is lost.
    assert cli.replace_from_flags(base, values, names).episode_length == 1000


def _dry_run(argv: list[str], cwd: str) -> str:
    """What `train.py --dry_run` prints: the game and training settings it would use."""
    proc = subprocess.run([sys.executable, TRAIN, *argv, "--dry_run"], capture_output=True,
                          text=True, cwd=cwd, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


@pytest.mark.parametrize("argv, players, length, period, frames", [
    (["--preset=quickstart"], 4, 200, 50, 1),
    (["--preset=quickstart", "--num_players=5", "--frame_stack=2"], 5, 200, 50, 2),
    (["--preset=fast"], 7, 1000, 50, 4),  # the paper's game (GameConfig's defaults)
])
def test_train_flags_apply_the_quickstart_preset_and_override_it(tmp_path, argv, players,
                                                                 length, period, frames):
    text = _dry_run(["--engine=jax", *argv, f"--output_dir={tmp_path / 'out'}"],
                    str(tmp_path))
    assert f"num_players={players}," in text and f"episode_length={length}," in text
    assert f"tax_period={period}," in text and f"frame_stack={frames}," in text
    assert "pixels_per_tile=1," in text and "hidden=64," in text


# ------------------------------------------------------------ quiet
LINES_SEEN = [  # copied from the start-up of `train.py --preset=fast` before issue 29
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796433590.648139    9576 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors.",
    "I0000 00:00:1796433590.650287    9576 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "E0000 00:00:1796433592.243256    9576 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "[2026-12-05 01:24:57,305 E 14054 14054] core_worker.cc:2465: Actor with class name: "
    "'MultiAgentEnvRunner' and ID: '87db' has constructor arguments in the object store and "
    "max_restarts > 0. If the arguments in the object store go out of scope or are lost, "
    "the actor restart will fail.",
    "\x1b[36m(pid=14478)\x1b[0m I0000 00:00:1796433899.045623   14478 cudart_stub.cc:31] "
    "Could not find cuda drivers on your machine, GPU will not be used.",
]


def test_the_start_up_lines_are_dropped_and_others_kept_in_order():
    kept = ["iter    1 | game steps 981", "E0000 00:00:1.0  1 other.cc:3] a real failure",
            "Traceback (most recent call last):"]
    text = "\n".join([LINES_SEEN[0], kept[0], *LINES_SEEN[1:], kept[1], kept[2]]) + "\n"
    assert quiet.drop_noise(text) == "\n".join(kept) + "\n"


def test_filtered_stderr_holds_back_c_and_python_writes_and_drops_the_noise():
    code = f"""
import os, sys
from sed_meltingpot.runs import quiet
try:
    with quiet.filtered_stderr():
        os.write(2, {LINES_SEEN[1]!r}.encode() + b"\\n")   # as a C++ library writes
        print("first kept", file=sys.stderr)
        os.write(2, b"second kept\\n")
        print("out", flush=True)                          # stdout is not touched
        raise RuntimeError("boom")
except RuntimeError:
    print("third kept", file=sys.stderr)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "first kept\nsecond kept\nthird kept\n"
    assert proc.stdout == "out\n"


def test_quiet_loggers_raise_but_never_lower_a_level():
    loggers = {name: logging.getLogger(name) for name in quiet.QUIET_LOGGERS}
    before = {name: logger.level for name, logger in loggers.items()}
    first = next(iter(loggers))
    try:
        for logger in loggers.values():
            logger.setLevel(logging.NOTSET)
        loggers[first].setLevel(logging.CRITICAL)
        quiet.quiet_python_loggers()
        assert loggers[first].level == logging.CRITICAL
        for name, logger in loggers.items():
            if name != first:
                assert logger.level == logging.ERROR
    finally:
        for name, logger in loggers.items():
            logger.setLevel(before[name])


# ------------------------------------------------------------ the command itself
def run_train(argv: list[str], cwd: str, timeout: int) -> tuple[str, list[str]]:
    """Runs train.py as a user does; its output (stdout and stderr together, as a
    terminal shows them) and its lines."""
    proc = subprocess.run([sys.executable, TRAIN, *argv], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, cwd=cwd, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc.stdout, proc.stdout.splitlines()


def check_quiet_and_named_outputs(lines: list[str], output_dir: str) -> None:
    """No start-up noise; iteration lines with an ETA; the last two lines name the
    checkpoint and the learning curve, which exist."""
    noisy = [line for line in lines if any(p.search(line) for p in NOISE_SEEN)]
    assert not noisy, noisy
    iterations = [line for line in lines if line.startswith("iter ")]
    assert iterations and all(re.search(r"\| ETA \d+(s|m\d\ds|h\d\dm)$", line)
                              for line in iterations), iterations
    checkpoint, curve = lines[-2:]
    assert checkpoint.startswith("checkpoint: ") and curve.startswith("learning curve: ")
    checkpoint_path = checkpoint.removeprefix("checkpoint: ")
    curve_path = curve.removeprefix("learning curve: ")
    assert os.path.isdir(checkpoint_path) and runlog.is_checkpoint(checkpoint_path)
    assert os.path.samefile(curve_path, os.path.join(output_dir, "learning_curve.png"))
    from PIL import Image

    assert Image.open(curve_path).size == (1000, 900)


def tenths(records: list[dict], key: str = "productivity") -> tuple[float, float]:
    """Mean of `key` over the iterations that ended episodes in the first tenth of
    the training, and in the last tenth."""
    tenth = max(1, len(records) // 10)

    def mean(part: list[dict]) -> float:
        values = [r[key] for r in part if not r.get("metrics_stale") and r.get(key) is not None]
        assert values, part
        return sum(values) / len(values)

    return mean(records[:tenth]), mean(records[-tenth:])


def test_tenths_by_hand():
    records = [{"productivity": float(k), "metrics_stale": k == 1} for k in range(20)]
    assert tenths(records) == (0.0, 18.5)  # iteration 1 stale: first tenth is [0]


def test_a_tiny_quickstart_is_quiet_and_names_its_png_and_checkpoint(tmp_path):
    out = str(tmp_path / "quick")
    _, lines = run_train([*QUICKSTART, f"--output_dir={out}", "--num_iterations=2",
                          "--num_envs=2", "--rollout_fragment_length=50"], str(tmp_path),
                         timeout=900)
    check_quiet_and_named_outputs(lines, out)
    assert len([line for line in lines if line.startswith("iter ")]) == 2


@pytest.mark.slow
def test_the_readme_first_command_is_quiet_and_its_players_learn(tmp_path):
    """The README's first command at its budget (100 iterations of 16 games x 200
    steps: about 2 min on an idle 2-core machine, compile included)."""
    out = str(tmp_path / "quickstart")
    _, lines = run_train([*QUICKSTART, f"--output_dir={out}"], str(tmp_path), timeout=1800)
    check_quiet_and_named_outputs(lines, out)
    records = runlog.read_progress(out)
    assert len(records) == 100
    first, last = tenths(records)
    # Seeds 0-2 on the 2-core machine (--seed=k): 26.8 -> 87.2, 31.1 -> 75.5, 27.9 -> 89.2.
    assert last > 1.5 * first, (first, last)


@pytest.mark.slow
def test_the_rllib_engine_is_one_flag_away_and_quiet_too(tmp_path):
    out = str(tmp_path / "rllib")
    _, lines = run_train([*QUICKSTART, "--engine=rllib", f"--output_dir={out}",
                          "--num_iterations=2"], str(tmp_path), timeout=1800)
    check_quiet_and_named_outputs(lines, out)
