"""The scaling benchmark (`scripts/benchmark_scale.py`, issue 32 item 4): its plumbing,
never its speed (no assert here reads a rate against a bound).

* `--quick` end to end in a subprocess: every section's rows, the Markdown table, the
  CSV, JSON and PNG written; one population row per size asked for; the rates in the CSV
  equal the arithmetic of their own columns; rows with the same settings measured once.
* The growth exponent against hand-made numbers (seconds = 2e-6 x players^1.5).
* Memory per game against a hand count of the fast preset's observations and rollout
  row on a 2-player game (one Commons Harvest patch: the paper's 24 x 18 map).
* The timing loop on a fake clock: warm-up and pilot left out, the count fixed by the
  pilot, the median of the counted calls.
* The plan and its one-line errors, without compiling.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.perf import scale_memory, scale_report, timing
from sed_meltingpot.perf.scale_benchmark import Row

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "benchmark_scale.py")


def load_script():
    name = "benchmark_scale_under_test"
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """`--quick` once (tiny sizes). XLA's backend optimisation is turned down for this
    process only: its programs compile in half the time, and nothing here is a rate."""
    out = str(tmp_path_factory.mktemp("scaling") / "out")
    env = {**os.environ, "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " "
                                       "--xla_backend_optimization_level=0 "
                                       "--xla_llvm_disable_expensive_passes=true").strip()}
    proc = subprocess.run([sys.executable, SCRIPT, "--quick", f"--output_dir={out}"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with open(os.path.join(out, "scaling.csv")) as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(out, "scaling.json")) as f:
        data = json.load(f)
    return {"out": out, "stdout": proc.stdout, "rows": rows, "json": data}


def test_quick_mode_writes_the_table_csv_json_and_plot(quick_run):
    out = quick_run["out"]
    with open(os.path.join(out, "scaling.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    stdout = quick_run["stdout"]
    assert "| section | players |" in stdout and "| players | map | state bytes" in stdout
    assert "machine: " in stdout and " on cpu " in stdout  # the machine beside the numbers
    with open(os.path.join(out, "scaling.md")) as f:
        assert "| section | players |" in f.read()
    machine = quick_run["json"]["machine"]
    assert machine["cpus"] == os.cpu_count() and machine["backend"] == "cpu"
    by_section = {}
    for row in quick_run["rows"]:
        by_section.setdefault(row["section"], []).append(row)
    assert set(by_section) == {"env", "train", "plan", "population", "memory"}
    assert [int(r["players"]) for r in by_section["env"]] == [2, 3]
    assert [int(r["players"]) for r in by_section["train"]] == [2]  # one: no train fit
    assert [int(r["players"]) for r in by_section["memory"]] == [2, 3]
    assert [r["plan"].split(":")[0] for r in by_section["plan"]] == ["size", "count 2"]
    assert [int(r["num_minibatches"]) for r in by_section["plan"]] == [1, 2]  # 100 rows
    # The env series has two player counts: an exponent was fitted.
    assert set(quick_run["json"]["fits"]) == {"env"}
    assert all(math.isfinite(f["exponent"]) for f in quick_run["json"]["fits"].values())


def test_the_population_rows_are_one_per_size_asked_for(quick_run):
    population = [r for r in quick_run["rows"] if r["section"] == "population"]
    assert [int(r["runs"]) for r in population] == [1, 2]
    assert {int(r["players"]) for r in population} == {2}
    # One run with the size plan is the train row of 2 players: measured once.
    train_2 = next(r for r in quick_run["rows"] if r["section"] == "train"
                   and r["players"] == "2")
    assert population[0]["note"] == "the train row"
    assert population[0]["median_s"] == train_2["median_s"]
    assert population[1]["note"] == ""  # two runs: a program of its own, measured


def test_the_rates_are_the_arithmetic_of_their_columns(quick_run):
    """Game steps per call = runs x games x steps; rates = that over the median call."""
    timed = [r for r in quick_run["rows"] if r["section"] != "memory"]
    assert len(timed) == 7  # 2 env, 1 train, 2 plan, 2 population
    for r in timed:
        steps = int(r["runs"]) * int(r["games"]) * int(r["steps"])
        median = float(r["median_s"])
        assert int(r["game_steps_per_call"]) == steps
        assert float(r["game_steps_per_s"]) == pytest.approx(steps / median)
        assert float(r["agent_steps_per_s"]) == pytest.approx(steps / median * int(r["players"]))
        assert float(r["seconds_per_game_step"]) == pytest.approx(median / steps)
        assert int(r["calls"]) >= 2  # --quick's --min_calls


# --------------------------------------------------------------------- the fit
def _row(players: int, seconds_per_game_step: float, section: str = "train",
         series: str = "train", runs: int = 1) -> Row:
    """A hand-made row of 4 games x 50 steps whose median call gives that cost."""
    return Row(section, series, players, "generated", 18, 24, "grid", runs, 4, 50,
               seconds_per_game_step * 4 * 50 * runs, 3, 1.0)


def test_the_exponent_of_hand_made_costs():
    players = [7, 32, 128, 512, 1024]
    k, c = scale_report.fit_exponent(players, [2e-6 * p ** 1.5 for p in players])
    assert k == pytest.approx(1.5, abs=1e-9) and c == pytest.approx(2e-6, rel=1e-9)
    # Through rows: the plan and population rows (another variable) are not fitted.
    rows = [_row(p, 2e-6 * p ** 1.5) for p in players]
    rows += [_row(p, 5e-5 * p ** 0.5, "env", "env") for p in players]
    rows += [_row(128, 1.0, "plan"), _row(7, 9.0, "population", runs=4)]
    found = scale_report.fits(rows)
    assert set(found) == {"train", "env"}
    assert found["train"]["exponent"] == pytest.approx(1.5, abs=1e-9)
    assert found["train"]["points"] == 5
    assert found["env"]["exponent"] == pytest.approx(0.5, abs=1e-9)
    assert found["env"]["coefficient"] == pytest.approx(5e-5, rel=1e-9)
    # Least squares, not two points: noise around 1.5 on the logs, slope by hand.
    noisy = [2e-6 * p ** 1.5 * f for p, f in zip(players, [1.1, 0.9, 1.0, 1.2, 0.8],
                                                  strict=True)]
    x, y = np.log(players), np.log(noisy)
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    assert scale_report.fit_exponent(players, noisy)[0] == pytest.approx(slope, rel=1e-12)


def test_one_player_count_has_no_exponent():
    assert scale_report.fits([_row(7, 1e-5), _row(7, 2e-5)]) == {}
    with pytest.raises(ValueError, match="two or more player counts"):
        scale_report.fit_exponent([7, 7], [1e-5, 2e-5])
    with pytest.raises(ValueError, match="positive"):
        scale_report.fit_exponent([7, 8], [1e-5, 0.0])


def test_the_report_and_files_from_hand_made_rows(tmp_path):
    """The writer on hand-made rows: the CSV holds every row (memory rows too) and the
    table one line per row; the plot is a PNG."""
    info = {"cpus": 2, "usable_cpus": 2, "machine": "x86_64", "jax": "0", "backend": "cpu",
            "device_kind": "cpu", "device_count": 1, "load_average": [1.0, 1.0, 1.0]}
    rows = [_row(p, 2e-6 * p ** 1.5) for p in (7, 32)] + [
        _row(7, 1e-5, "population", runs=r) for r in (1, 2, 4)]
    memory = [scale_memory.MemoryRow(7, "default", 100, 50, 1492.5)]
    paths = scale_report.write(str(tmp_path), info, rows, memory)
    assert [os.path.basename(p) for p in paths] == ["scaling.csv", "scaling.json",
                                                    "scaling.md", "scaling.png"]
    with open(paths[0]) as f:
        records = list(csv.DictReader(f))
    assert [r["section"] for r in records] == ["train"] * 2 + ["population"] * 3 + ["memory"]
    assert records[-1]["game_bytes"] == "150"
    assert float(records[-1]["rollout_bytes_per_game_step"]) == 1492.5 * 7
    text = scale_report.report(info, rows, memory)
    assert text.count("\n| train |") == 2 and text.count("\n| population |") == 3
    assert "players^1.50" in text


# ------------------------------------------------------------------ memory
def test_tree_bytes_counts_every_leaf():
    tree = {"a": np.zeros((2, 3), np.uint8), "b": [np.zeros(4, np.float32),
                                                   np.zeros((), np.int32)]}
    assert scale_memory.tree_bytes(tree) == 6 + 16 + 4


def test_memory_per_game_by_hand():
    """2 players on one patch (the paper's 24 x 18 map), the fast preset: 11 x 11 views
    of one pixel per tile, 4 frames of 3 channels, uint8; features f32."""
    n, b = 2, GameConfig().num_brackets
    m = scale_memory.memory_row(n)
    view = 11 * 11 * 3 * 4  # one player's stacked view, uint8
    obs = (n * view  # player_image
           + n * (b + 3) * 4  # player_features: sigma, rates, period position, ready
           + 18 * 24 * 3  # principal_image: the world, one pixel per tile
           + (2 * n + b + 2) * 4)  # principal_features
    assert m.obs_bytes == obs
    # The state holds the frame stacks (n views) and the world beside them.
    assert m.state_bytes > n * view
    # A rollout row: view, features, action (int32), logp, value, reward (f32), and the
    # game's done flag (one byte per game step) shared by its n players.
    assert m.rollout_row_bytes == pytest.approx(view + (b + 3) * 4 + 4 * 4 + 1 / n)
    assert m.game_bytes == m.state_bytes + obs
    assert m.rollout_bytes_per_game_step == pytest.approx(n * m.rollout_row_bytes)


# ------------------------------------------------------------------- timing
class FakeClock:
    """Each call of the timed function moves the clock by its next duration."""

    def __init__(self, durations):
        self.now, self.durations = 0.0, list(durations)

    def __call__(self):
        return self.now

    def call(self, carry):
        self.now += self.durations.pop(0)
        return carry + 1


def test_time_calls_leaves_out_the_warm_up_and_pilot_and_takes_the_median():
    clock = FakeClock([8.0, 2.0, 1.0, 1.5, 1.25, 99.0])
    carry, timed = timing.time_calls(clock.call, 0, 6.0, clock=clock, wait=lambda x: x)
    # The pilot took 2 s: 6 s is ceil(6 / 2) = 3 calls, fixed before they start; their
    # median is 1.25 (with the warm-up and the pilot among them it would be 1.5).
    assert (carry, timed.calls, timed.median_s, timed.warmup_s) == (5, 3, 1.25, 8.0)
    assert clock.durations == [99.0]  # the fourth timed call never ran


def test_the_count_is_bounded():
    assert timing.call_count(10.0, 1.0) == timing.MIN_CALLS
    assert timing.call_count(1e-9, 60.0) == timing.MAX_CALLS
    assert timing.call_count(0.5, 4.0, min_calls=1) == 8
    assert timing.call_count(0.7, 4.0, min_calls=1) == 6  # rounded up: >= 4 s


# ---------------------------------------------------------------- the plan
def test_the_plan_has_one_population_row_per_size_and_checks_its_configs(capsys):
    script = load_script()
    args = script.parse_args(["--population_runs=1,2,4", "--sections=population",
                              "--population_players=3", "--rollout=50", "--train_games=1"])
    planned = script.plan(args)
    assert [(p.section, p.players, p.runs) for p in planned] == [
        ("population", 3, 1), ("population", 3, 2), ("population", 3, 4)]
    script.main(["--quick", "--dry_run"])
    out = capsys.readouterr().out
    assert "dry run: settings valid; nothing compiled" in out
    assert "count 2: 2 x 50 rows" in out  # 1 game x 50 steps x 2 players in 2 minibatches
    with pytest.raises(SystemExit, match="--num_minibatches=1000 is outside"):
        script.main(["--quick", "--plans=1000", "--dry_run"])


@pytest.mark.parametrize("argv, message", [
    (["--plans=size,x"], "--plans='size,x': each is 'size' or a minibatch count"),
    (["--sections=env,gpu"], "--sections='env,gpu'"),
    (["--players=7,5000"], "--players='7,5000': [5000] outside [1, 4096]"),
    (["--rollout=70"], "--rollout=70: must be a positive multiple of the tax period (50)"),
    (["--seconds=0"], "--seconds=0.0 must be in (0, 3600]"),
    (["--population_runs=0"], "--population_runs='0': [0] outside"),
])
def test_bad_flags_are_one_line_errors(argv, message, capsys):
    script = load_script()
    with pytest.raises(SystemExit) as info:
        script.parse_args(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]
