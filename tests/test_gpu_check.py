"""Tests for scripts/gpu_check.py, the device check of issue 19, on CPU at tiny sizes.

The check's logic (the script's flags; sed_meltingpot/perf's plan, timing loop, step
counts, memory columns, bf16 comparison, table) is checked here so that the run on a
GPU machine is a formality. Speed is printed, never asserted. The CPU run makes Ray,
Melting Pot, dmlab2d and TensorFlow unimportable, as they are on the device machine.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from sed_meltingpot.perf import bf16, device_rows, timing
from sed_meltingpot.perf import gpu_check as check

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "gpu_check.py")
ABSENT = ("ray", "meltingpot", "dmlab2d", "tensorflow")


def _load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


script = _load_script()  # its flags: parse_args


def run_script(*args: str, tmp_path) -> tuple[subprocess.CompletedProcess, dict]:
    """The script in a fresh process from the repository root, with the packages the
    device lacks unimportable; returns the process and its --json results."""
    out = tmp_path / "results.json"
    code = ("import runpy, sys\n"
            f"for name in {ABSENT!r}:\n"
            "    sys.modules[name] = None  # any import of them raises ImportError\n"
            f"sys.argv = ['gpu_check.py'] + {[*args, f'--json={out}']!r}\n"
            "try:\n"
            "    runpy.run_path('scripts/gpu_check.py', run_name='__main__')\n"
            "finally:\n"
            f"    loaded = [m for m in {ABSENT!r} if sys.modules.get(m) is not None]\n"
            "    print('@@LOADED@@', loaded)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert "@@LOADED@@ []" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text()) if out.exists() else {}
    return proc, results


def tables(stdout: str) -> list[list[dict[str, str]]]:
    """The markdown tables of the output, each a list of {column: cell}."""
    found, current, header = [], [], None
    for line in stdout.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                header = cells
            elif not all(set(c) <= {"-"} for c in cells):
                current.append(dict(zip(header, cells, strict=True)))
        elif header is not None:
            found.append(current)
            current, header = [], None
    return found


def _number(cell: str) -> float:
    return float(cell.replace(",", "").replace(">= ", ""))


# ------------------------------------------------------------ the comparison
def test_compare_fails_beyond_the_tolerance():
    """The bf16 check's verdict: max |f32 - bf16| against atol + rtol x max |f32|."""
    ref = np.array([1.0, -2.0, 0.5])
    close = bf16.compare("x", ref, ref + [0.0, 0.03, 0.0], rtol=0.02, atol=1e-3)
    assert close.passed and close.values == 3
    assert close.max_abs_diff == pytest.approx(0.03)
    assert close.tolerance == pytest.approx(1e-3 + 0.02 * 2.0)
    off = bf16.compare("x", ref, ref + [0.0, 0.0, 0.5], rtol=0.02, atol=1e-3)
    assert not off.passed and off.max_abs_diff == pytest.approx(0.5)
    assert not bf16.compare("x", ref, [1.0, np.nan, 0.5], rtol=1.0, atol=1.0).passed
    assert not bf16.compare("x", [np.inf], [np.inf], rtol=1.0, atol=1.0).passed
    with pytest.raises(ValueError, match="shapes differ"):
        bf16.compare("x", ref, ref[:2], rtol=0.02, atol=1e-3)


def test_failed_check_sets_the_exit_status_and_shows_in_the_table():
    bad = bf16.compare("fast preset, loss (2 rows)", [1.0], [2.0], rtol=0.02, atol=0.0)
    assert check.bf16_table([bad], None)[-1] == (
        "| fast preset, loss (2 rows) | 1 | 1 | 0.02 | NO |")
    assert check.bf16_table([], "skipped: time budget")[-1].endswith(
        "| skipped: time budget |")


# ------------------------------------------------------------ flags and plan
def test_default_plan_is_the_issues_device_run():
    args = script.parse_args([])
    rows = [(r.group, r.kind, r.dtype, r.games) for r in device_rows.plan(args)]
    env = [("env", obs, "-", games) for games in (1024, 4096, 16384)
           for obs in ("none", "tiles", "pixels")]
    train = [("train", preset, dtype, games) for preset, games in (("fast", 512), ("paper", 64))
             for dtype in ("float32", "bfloat16")]
    assert rows == env + train
    slots = {(r.kind, r.dtype): r.slot_s for r in device_rows.plan(args) if r.group == "train"}
    assert slots[("paper", "float32")] + slots[("paper", "bfloat16")] == 120  # 2 min slot
    assert args.budget_seconds == 330 and args.principal == "learned"
    assert args.presets == ["fast", "paper"]  # the bf16 check covers both networks
    quick = script.parse_args(["--quick", "--sizes=5,2"])
    assert quick.sizes == [5, 2] and quick.env_seconds == 0 and quick.principal == "none"
    assert [r.games for r in device_rows.plan(quick) if r.group == "env"][:1] == [2]


@pytest.mark.parametrize("argv,needles", [
    (["--sizes=0"], ["--sizes=0", "[1, 1048576]"]),
    (["--sizes=a,b"], ["--sizes='a,b'", "integers"]),
    (["--obs=rgb"], ["--obs='rgb'", "none, tiles, pixels"]),
    (["--dtypes=float16"], ["--dtypes='float16'", "float32, bfloat16"]),
    (["--presets="], ["--presets=''", "fast, paper"]),
    (["--rollout=75"], ["--rollout=75", "multiple of the tax period (50)"]),
    (["--budget_seconds=-1"], ["--budget_seconds=-1.0", "[0, 3600]"]),
    (["--env_steps=0"], ["--env_steps=0", "[1, 100000]"]),
    (["--bf16_rtol=2"], ["--bf16_rtol=2.0", "[0, 1]"]),
])
def test_bad_flags_name_the_flag_value_and_range(argv, needles, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.parse_args(argv)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    for needle in needles:
        assert needle in message, (argv, message)


def test_timed_calls_keep_to_the_slot_and_the_minimum():
    now = [0.0]

    def clock() -> float:
        return now[0]

    def call(count: int) -> int:
        now[0] += 1.0  # each call takes one second
        return count + 1

    budget = timing.Budget(10.0, clock)
    assert budget.deadline(4.0) == 4.0 and budget.deadline(60.0) == 10.0
    carry, calls, seconds = timing.timed_calls(call, 0, lambda c: c, 1, 3.0, clock)
    assert (carry, calls, seconds) == (3, 3, 3.0)
    # Past the deadline already: still the minimum number of calls.
    carry, calls, seconds = timing.timed_calls(call, 0, lambda c: c, 2, 0.0, clock)
    assert (calls, seconds) == (2, 2.0)
    assert budget.share(2.0, 4.0) == 2.0  # 5 s left: every remaining slot fits
    assert budget.share(2.0, 10.0) == 1.0  # 10 s of slots in 5 s: each halved
    now[0] = 11.0
    assert budget.left() < 0 and budget.share(2.0, 10.0) == 0.0


def test_json_has_no_nan():
    assert check._plain({"a": [math.nan, 1.0], "b": (math.inf,)}) == {"a": [None, 1.0],
                                                                          "b": [None]}


# ------------------------------------------------------------ the script itself
def test_quick_run_on_cpu(tmp_path):
    """The whole script at tiny sizes: every planned row runs, the figures are positive
    and finite, the steps add up, and bf16 really computes in bfloat16 (nonzero
    differences) within its tolerance."""
    import jax

    proc, results = run_script("--quick", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    speed, bf16 = tables(proc.stdout)
    assert tuple(speed[0]) == check.SPEED_COLUMNS
    assert [(r["row"], r["dtype"], r["games"]) for r in speed] == [
        ("env step, no observations", "-", "3"), ("env step + tiles (11x11)", "-", "3"),
        ("env step + pixels (88x88 RGB)", "-", "3"),
        ("training, fast preset (tiles)", "bfloat16", "2")]
    device_has_stats = bool(jax.devices()[0].memory_stats())
    for row, saved in zip(speed, results["rows"], strict=True):
        assert row["status"] == "ok", row
        games, per_game = int(row["games"]), int(row["steps/game"])
        assert int(row["game steps"]) == games * per_game == saved["game_steps"] > 0
        assert per_game % (4 if row["dtype"] == "-" else 50) == 0  # whole calls/iterations
        for column in ("compile s", "game steps/s", "prog MiB"):
            assert math.isfinite(_number(row[column])) and _number(row[column]) > 0, row
        assert saved["run_s"] > 0 and saved["rate"] == pytest.approx(
            saved["game_steps"] / saved["run_s"])
        assert _number(row["game steps/s"]) == pytest.approx(saved["rate"], abs=1)
        if device_has_stats:
            assert _number(row["peak MiB"]) > 0, row
        else:  # CPU: jax has no memory_stats there
            assert row["peak MiB"] == "n/a", row
    assert speed[0]["target"] == ">= 10,000,000" and speed[1]["target"] == ">= 3,000,000"
    assert speed[2]["target"] == "-" and speed[3]["target"] == ">= 1,000,000"
    assert [r["bf16 vs f32, fixed batch"] for r in bf16] == [
        f"fast preset, {name} (14 rows)" for name in ("logits", "value", "loss", "gradient")]
    for row, saved in zip(bf16, results["bf16"], strict=True):
        assert row["ok"] == "yes" and saved["passed"], row
        assert 0 < saved["max_abs_diff"] <= saved["tolerance"], saved  # bf16 is in effect
    assert "cpu" in results["device"] and "jax " in results["device"]


def test_budget_guard_skips_rows_and_still_prints_the_table(tmp_path):
    proc, results = run_script("--quick", "--budget_seconds=0", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    speed, bf16 = tables(proc.stdout)
    assert len(speed) == 4 and {r["status"] for r in speed} == {"skipped: time budget"}
    assert {r["game steps/s"] for r in speed} == {"n/a"}
    assert bf16[0]["ok"] == "skipped: time budget" and results["bf16"] == []


@pytest.mark.slow
def test_every_row_kind_on_cpu(tmp_path):
    """Both presets, both dtypes, the learned principal, two sizes: the device run's
    every program, tiny (several minutes of compiling on CPU)."""
    proc, results = run_script("--quick", "--sizes=2,3", "--presets=fast,paper",
                               "--dtypes=float32,bfloat16", "--principal=learned",
                               tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    speed, bf16 = tables(proc.stdout)
    assert len(speed) == 6 + 4 and {r["status"] for r in speed} == {"ok"}
    assert len(bf16) == 8 and {r["ok"] for r in bf16} == {"yes"}
    for saved in results["rows"]:
        assert saved["game_steps"] == saved["games"] * saved["steps_per_game"] > 0
