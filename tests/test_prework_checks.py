"""Every check that can run before work starts runs in the plan (issue 31, items 3-4):
float flags refuse NaN and infinity in every script, and the probes that used to fail
after work had started (a traceback, a broken file) end in one line first.

Each script runs in `tests/script_harness.py` (one process per script, many command
lines in it; a command line whose `main` must fail before any work is handed to `main`
even without --dry_run). Scripts that do their checks in `main` after argparse
(gpu_train.py, gpu_check.py, make_twin_assets.py) run as subprocesses, stopping at
the check.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from test_experiment import make_twin_run
from test_script_errors import HARNESS, ROOT, _check, run_script

from sed_meltingpot.game.config import GameConfig

SCRIPTS = ("train", "evaluate", "render_video", "plot", "experiment", "lever_analysis",
           "pool_results", "gpu_train", "gpu_check", "results_summary", "make_twin_assets",
           "benchmark_training", "benchmark_twin", "benchmark_substrate", "benchmark_checkouts",
           "benchmark_scale")
#: Float flags each of these scripts has (at least): the probe must find them, so that it
#: cannot pass by finding none.
FLOATS = {"train": {"lr", "principal_lr", "principal_entropy_coeff", "tax_cap_start"},
          "render_video": {"fps"},
          "gpu_train": {"seconds", "compile_seconds", "mem_fraction"},
          "gpu_check": {"env_seconds", "budget_seconds", "bf16_rtol"},
          "benchmark_scale": {"seconds"}}


def finite_probe(script: str, cwd: str) -> dict:
    proc = subprocess.run([sys.executable, HARNESS, "--finite_probe",
                           os.path.join(ROOT, "scripts", f"{script}.py")],
                          capture_output=True, text=True, cwd=cwd, timeout=900)
    assert "@@RESULTS@@" in proc.stdout, (script, proc.stderr[-4000:])
    return json.loads(proc.stdout.split("@@RESULTS@@")[-1])


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_float_flag_refuses_nan_and_inf_in_one_line(script, tmp_path):
    if script == "benchmark_training":
        pytest.importorskip("ray")
    probe = finite_probe(script, str(tmp_path))
    names = probe["flags"]
    assert FLOATS.get(script, set()) <= set(names), (script, names)
    assert len(probe["results"]) == 2 * len(names)
    for k, result in enumerate(probe["results"]):
        name, value = names[k % len(names)], ("nan", "inf")[k // len(names)]
        assert result["outcome"] == "usage", (script, name, value, result)
        message = result["message"].strip().splitlines()[-1]  # argparse: usage, then error
        assert f"--{name}" in message, (script, name, message)
        if value == "nan":  # inf may meet a stated upper bound first: also one line
            assert "finite" in message, (script, name, message)
    assert not os.listdir(tmp_path)  # nothing written


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A plain file (an output folder that is a file), a folder (an output file that is
    a folder), a run log for plot.py, a 3-player jax run, and copies of two committed
    experiment calls: sound, with a truncated experiment.json, with a results.csv cut
    mid-row."""
    base = tmp_path_factory.mktemp("prework")
    a_file = base / "a_file"
    a_file.write_text("not a folder")
    (base / "a_folder.json").mkdir()
    run = base / "logged_run"
    run.mkdir()
    (run / "progress.jsonl").write_text(json.dumps({"iteration": 1, "game_steps": 10}) + "\n")
    calls = {}
    for name in ("paper_fast", "paper_fast_s3"):
        for kind in ("good", "bad_json", "cut_csv"):
            folder = base / f"{name}_{kind}"
            shutil.copytree(os.path.join(ROOT, "docs", "results", name), folder)
            calls[(name, kind)] = str(folder)
            if kind == "bad_json":
                text = (folder / "experiment.json").read_text()
                (folder / "experiment.json").write_text(text[: len(text) // 2])
            if kind == "cut_csv":
                text = (folder / "results.csv").read_text()
                cut = len(text) // 2
                while text[cut - 1] in ",\n":  # mid-field, so the row lacks columns
                    cut += 1
                (folder / "results.csv").write_text(text[:cut])
    results_dir = base / "results"
    results_dir.mkdir()
    shutil.copytree(calls[("paper_fast", "cut_csv")], results_dir / "paper_fast")
    (results_dir / "index.md").write_text("# r\n<!-- summary:start -->\n<!-- summary:end -->\n")
    jax_run = make_twin_run(str(base / "jax_run"),
                            GameConfig(num_players=3, episode_length=50, tax_period=25))
    return {"base": str(base), "file": str(a_file), "folder": str(base / "a_folder.json"),
            "logged_run": str(run), "calls": calls, "results_dir": str(results_dir),
            "jax_run": jax_run}


def test_map_capacity_and_the_runs_players_are_checked_in_the_dry_run(files):
    out = os.path.join(files["base"], "train_out")
    cases = [
        (["--engine=jax", f"--output_dir={out}", "--num_players=100000"], "usage",
         ["num_players=100000 is outside [1, 62]", "the map has 62 spawn points"]),
        (["--engine=jax", f"--output_dir={out}", "--map=large", "--num_players=500"], "usage",
         ["num_players=500", "spawn points"]),
    ]
    _check(run_script("train.py", [c[0] for c in cases], files["base"]), cases)
    assert not os.path.exists(out)
    run = files["jax_run"]
    cases = [
        ([f"--run_dir={run}", "--num_players=5"], "usage",
         [f"--num_players=5: the run --run_dir={run} was trained with 3 players"]),
        ([f"--run_dir={run}", "--players=random", "--num_players=5"], "usage",
         ["was trained with 3 players"]),
        ([f"--run_dir={run}", "--num_players=3"], "ok", ["dry run"]),
    ]
    _check(run_script("lever_analysis.py", [c[0] for c in cases], files["base"]), cases)


def test_fps_and_the_search_grid_are_checked_before_playing(files):
    video = os.path.join(files["base"], "clip.gif")
    cases = [
        ([f"--output={video}", "--fps=nan"], "usage", ["--fps=nan", "finite"]),
        ([f"--output={video}", "--fps=0"], "usage", ["--fps=0"]),
        # Floats inside string flags are checked by their parsers (pinned here).
        ([f"--output={video}", "--principal=fixed:nan,0,0"], "usage",
         ["--principal", "rates[0]=nan"]),
    ]
    _check(run_script("render_video.py", [c[0] for c in cases], files["base"]), cases)
    assert not os.path.exists(video)  # no broken GIF
    out = os.path.join(files["base"], "eval_out")
    cases = [
        ([f"--output_dir={out}", "--grid_resolution=1000"], "usage",
         ["--grid_resolution=1000 would build 1,000,000,000 schedules",
          "at most 10,000", "--grid_resolution <= 21"]),
        ([f"--output_dir={out}", "--grid_resolution=21"], "ok", ["dry run"]),
        ([f"--output_dir={out}", "--principals=none", "--grid_resolution=1000"], "ok",
         ["dry run"]),  # no search, no grid
        ([f"--output_dir={out}", "--fixed=nan,0,0"], "usage", ["--fixed=nan,0,0"]),
        ([f"--output_dir={out}", "--voting_rule=fixed:inf"], "usage", ["--voting_rule"]),
    ]
    _check(run_script("evaluate.py", [c[0] for c in cases], files["base"]), cases)


def test_the_video_writer_refuses_a_non_finite_fps_before_opening_the_file(tmp_path):
    from sed_meltingpot.analysis.rendering import VideoWriter

    for fps in (float("nan"), float("inf"), 0.0):
        with pytest.raises(ValueError, match="fps=.* must be a finite number > 0"):
            VideoWriter(str(tmp_path / "clip.gif"), fps)
    assert not os.listdir(tmp_path)


def _main(argv: list[str]) -> dict:
    """A command line handed to the script's `main` (it must stop at a check)."""
    return {"argv": argv, "main": True}


def test_output_paths_are_checked_before_work_in_every_script_that_writes(files):
    a_file, folder = files["file"], files["folder"]
    calls = files["calls"]
    inputs = f"--inputs={calls[('paper_fast', 'good')]},{calls[('paper_fast_s3', 'good')]}"
    for script, cases in {
        "experiment.py": [
            (_main([f"--output_dir={a_file}"]), "usage", ["--output_dir=", "is a file, not a "
                                                         "folder"]),
            (_main([f"--output_dir={a_file}/sub"]), "usage", ["--output_dir=", "not writable"]),
        ],
        "plot.py": [
            (_main([files["logged_run"], f"--output_dir={a_file}"]), "usage",
             ["is a file, not a folder"]),
        ],
        "pool_results.py": [
            (_main([inputs, f"--output_dir={a_file}"]), "usage", ["is a file, not a folder"]),
        ],
        "results_summary.py": [
            (_main([f"--results_dir={files['results_dir']}", f"--forest={folder}"]), "usage",
             ["--forest=", "is a folder, not a file"]),
        ],
        "benchmark_training.py": [
            (_main([f"--output={folder}"]), "usage", ["--output=", "is a folder, not a file"]),
            (["--runners=1,x"], "usage", ["--runners"]),
            (["--presets=bogus"], "usage", ["--presets"]),
        ],
    }.items():
        if script == "benchmark_training.py" and not _importable("ray"):
            continue
        _check(run_script(script, [c[0] for c in cases], files["base"]), cases)
    for command, needle in (
            (["gpu_train.py", f"--output_dir={a_file}"], "is a file, not a folder"),
            (["gpu_check.py", "--quick", f"--json={folder}"], "is a folder, not a file"),
            (["make_twin_assets.py", f"--out={folder}"], "is a folder, not a file")):
        proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", command[0]),
                               *command[1:]], capture_output=True, text=True,
                              cwd=files["base"], timeout=600)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, (command, proc.stderr)
        assert needle in proc.stderr.strip().splitlines()[-1], (command, proc.stderr)


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_damaged_experiment_files_are_named_in_one_line(files):
    calls = files["calls"]
    out = os.path.join(files["base"], "pooled")
    bad_json = os.path.join(calls[("paper_fast", "bad_json")], "experiment.json")
    cut_csv = os.path.join(calls[("paper_fast_s3", "cut_csv")], "results.csv")
    cases = [
        (_main([f"--inputs={calls[('paper_fast', 'bad_json')]},"
                f"{calls[('paper_fast_s3', 'good')]}", f"--output_dir={out}"]), "usage",
         [bad_json, "not valid JSON"]),
        (_main([f"--inputs={calls[('paper_fast', 'good')]},"
                f"{calls[('paper_fast_s3', 'cut_csv')]}", f"--output_dir={out}"]), "usage",
         [cut_csv, "truncated or damaged results.csv"]),
    ]
    _check(run_script("pool_results.py", [c[0] for c in cases], files["base"]), cases)
    cut = os.path.join(files["results_dir"], "paper_fast", "results.csv")
    cases = [(_main([f"--results_dir={files['results_dir']}", "--check"]), "usage",
              [cut, "line"])]
    _check(run_script("results_summary.py", [c[0] for c in cases], files["base"]), cases)


def test_zero_sizes_in_the_benchmarks_are_refused_by_their_flags(files):
    for script, cases in {
        "benchmark_twin.py": [
            (["--steps=0"], "usage", ["--steps", "below the minimum 1"]),
            (["--lua-steps=0"], "usage", ["--lua-steps"]),
            (["--train-iterations=0"], "usage", ["--train-iterations"]),
            (["--fast-games=0"], "usage", ["--fast-games"]),
            (["--steps=10"], "ok", []),
        ],
        "benchmark_checkouts.py": [
            ([f"--baseline={ROOT}", "--rounds=0"], "usage", ["--rounds"]),
            ([f"--baseline={ROOT}", "--lua-steps=0"], "usage", ["--lua-steps"]),
            ([f"--baseline={ROOT}", "--train-iterations=1"], "usage",
             ["--train-iterations", "minimum 2"]),
            ([f"--baseline={ROOT}"], "ok", []),
        ],
        "benchmark_substrate.py": [(["--steps=0"], "usage", ["--steps"])],
    }.items():
        results = run_script(script, [c[0] for c in cases], files["base"])
        for (argv, outcome, needles), result in zip(cases, results, strict=True):
            assert result["outcome"] == outcome, (script, argv, result)
            for needle in needles:
                assert needle in result["message"], (script, argv, needle, result["message"])


def test_a_resumed_experiment_names_a_damaged_evaluation_cache(tmp_path):
    """An interrupted experiment resumes from each run's cached evaluation: one cut
    mid-write is named in one line and evaluated again (not silently, not a traceback)."""
    from sed_meltingpot.experiment.jobs import _read_json

    lines: list[str] = []
    path = tmp_path / "eval.json"
    assert _read_json(str(path), lines.append) is None and lines == []  # not cached yet
    path.write_text('{"key": "abc", "rows": [')
    assert _read_json(str(path), lines.append) is None
    assert len(lines) == 1 and str(path) in lines[0] and "evaluating this run again" in lines[0]
    path.write_text('{"key": "abc", "rows": []}')
    assert _read_json(str(path), lines.append) == {"key": "abc", "rows": []}
