"""One training iteration on a two-node Ray cluster started on loopback.

`ray start --head` plus a second `ray start --address` node on this machine,
then `scripts/train.py --ray_address=...` with its env runner placed by
Ray. The cluster is torn down even when the run fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORT = 6391


def _ray(*args: str, env: dict) -> subprocess.CompletedProcess:
    ray_bin = shutil.which("ray", path=os.path.dirname(sys.executable)) or "ray"
    return subprocess.run([ray_bin, *args], capture_output=True, text=True, env=env, timeout=180)


@pytest.mark.slow
def test_two_node_cluster_training_iteration(tmp_path):
    pytest.importorskip("ray")
    # The nodes and the driver must agree on authentication; loopback only.
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    address = f"127.0.0.1:{PORT}"
    try:
        head = _ray("start", "--head", "--node-ip-address=127.0.0.1", f"--port={PORT}",
                    "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats",
                    env=env)
        assert head.returncode == 0, head.stderr
        worker = _ray("start", f"--address={address}", "--node-ip-address=127.0.0.1",
                      "--num-cpus=1", env=env)
        assert worker.returncode == 0, worker.stderr
        nodes = subprocess.run(
            [sys.executable, "-c",
             f"import ray; ray.init(address='{address}'); "
             "print(sum(n['Alive'] for n in ray.nodes()))"],
            capture_output=True, text=True, env=env, timeout=120)
        assert nodes.stdout.strip().splitlines()[-1] == "2", nodes.stderr
        out = tmp_path / "run"
        proc = subprocess.run(
            [sys.executable, os.path.join(ROOT, "scripts", "train.py"),
             f"--ray_address={address}", "--preset=fast", "--num_iterations=1",
             "--episode_length=100", "--tax_period=25", "--train_batch_size=104",
             "--rollout_fragment_length=104", "--minibatch_size=52",
             "--num_env_runners=1", f"--output_dir={out}"],
            capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        records = [json.loads(line) for line in open(out / "progress.jsonl")]
        assert records[-1]["iteration"] == 1 and records[-1]["env_steps_this_iter"] >= 104
    finally:
        _ray("stop", "--force", env=env)
