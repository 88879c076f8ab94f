"""Tests for scripts/gpu_train.py (issue 16's paper-preset training on a GPU), on CPU:
the run length from gpu_check's rate, the table's numbers from hand-made progress
records, the flag errors, and one tiny real run of two concurrent principals."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "gpu_train.py")


def _load_script():
    spec = importlib.util.spec_from_file_location("gpu_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_train = _load_script()


def _check_json(tmp_path, rows: list[dict]) -> str:
    path = tmp_path / "gpu_check.json"
    path.write_text(json.dumps({"rows": rows}))
    return str(path)


def test_the_run_length_comes_from_the_paper_float32_rate(tmp_path):
    rows = [{"kind": "paper", "dtype": "bfloat16", "status": "ok", "rate": 99_999.0},
            {"kind": "fast", "dtype": "float32", "status": "ok", "rate": 88_888.0},
            {"kind": "paper", "dtype": "float32", "status": "ok", "rate": 12_800.0}]
    args = gpu_train.parse_args([f"--gpu_check_json={_check_json(tmp_path, rows)}",
                                 "--output_dir=x", "--seconds=100", "--compile_seconds=20",
                                 "--num_envs=64", "--rollout=200"])
    # (100 - 20) s x 12,800 game steps/s / 2 runs / (64 x 200) game steps per iteration
    assert gpu_train.plan_iterations(args)[0] == 40
    failed = [{**rows[2], "status": "failed: out of memory", "rate": float("nan")}]
    args = gpu_train.parse_args([f"--gpu_check_json={_check_json(tmp_path, failed)}",
                                 "--output_dir=x", "--num_iterations=7"])
    assert gpu_train.plan_iterations(args) == (7, "--num_iterations=7")


def test_the_table_row_from_hand_made_progress_records():
    nan = float("nan")

    def record(i, apples, stale, rates=(0.0, 0.0, 0.0)):
        return {"iteration": i, "game_steps": 100 * i, "time_this_iter_s": 0.5 if i > 1 else 30.0,
                "utilitarian": apples, "metrics_stale": stale,
                **{f"rate_b{k}": r for k, r in enumerate(rates)}}

    records = [record(1, 10.0, False), record(2, nan, True), record(3, 20.0, False),
               record(4, 30.0, False), record(5, 50.0, False, (0.2, 0.4, 0.6))]
    row = [c.strip() for c in gpu_train.summary_row("learned", records, 0).strip("|").split("|")]
    # 400 game steps after the first iteration in 4 x 0.5 s; 4 fresh records: quarters of 1
    assert row == ["learned", "5", "500", "200", "10.0", "50.0", "0.20/0.40/0.60", "exit 0"]
    assert gpu_train.summary_row("none", [], 1).split("|")[2].strip() == "0"


@pytest.mark.parametrize("flag, message", [
    ("--num_envs=0", "--num_envs=0: must be in [1, 65536]"),
    ("--rollout=10", "--rollout=10: must be in [50, 10000]"),
    ("--principals=", "--principals: give at least one"),
    ("--gpu_check_json=/no/such.json", "--gpu_check_json=/no/such.json: no such file"),
])
def test_bad_flags_are_named(flag, message, capsys):
    with pytest.raises(SystemExit):
        gpu_train.parse_args(["--output_dir=x", flag])
    assert message in capsys.readouterr().err


def test_a_tiny_run_trains_both_principals_side_by_side(tmp_path):
    done = subprocess.run([sys.executable, SCRIPT, "--quick", "--num_envs=2", "--rollout=50",
                           "--num_iterations=2", "--seconds=500",
                           f"--output_dir={tmp_path}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| learned")
            or line.startswith("| none")]
    assert len(rows) == 2
    for principal in ("learned", "none"):
        with open(tmp_path / principal / "progress.jsonl") as f:
            records = [json.loads(line) for line in f]
        assert [r["iteration"] for r in records] == [1, 2]
        assert records[-1]["game_steps"] == 2 * 2 * 50
        with open(tmp_path / principal / "run_config.json") as f:
            config = json.load(f)
        assert config["engine"] == "jax"
    none_row = next(r for r in rows if r.startswith("| none"))
    assert "0.00/0.00/0.00" in none_row and none_row.rstrip().endswith("exit 0 |")
