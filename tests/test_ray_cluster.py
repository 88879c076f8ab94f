"""One training iteration on a two-node Ray cluster started on loopback.

`ray start --head` plus a second `ray start --address` node on this machine,
then `scripts/train.py --ray_address=...` with its env runner placed by
Ray. The cluster is torn down even when the run fails, and only that
cluster: `ray stop` would stop every Ray process on the machine (other
people's runs too), so `Cluster.stop` ends the processes that name this
cluster's port or temp folder, and their children, by pid.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args: str, env: dict) -> subprocess.CompletedProcess:
    ray_bin = shutil.which("ray", path=os.path.dirname(sys.executable)) or "ray"
    return subprocess.run([ray_bin, *args], capture_output=True, text=True, env=env, timeout=180)


class Cluster:
    """A head node on a free loopback port with its own (short: Unix socket
    paths are limited) temp folder; `stop` ends its processes only."""

    def __init__(self, env: dict) -> None:
        self.env = env
        self.port = _free_port()
        self.temp_dir = tempfile.mkdtemp(prefix="rc", dir="/tmp")
        self.address = f"127.0.0.1:{self.port}"

    def start_head(self) -> subprocess.CompletedProcess:
        return _ray("start", "--head", "--node-ip-address=127.0.0.1", f"--port={self.port}",
                    f"--temp-dir={self.temp_dir}", "--num-cpus=1", "--include-dashboard=false",
                    "--disable-usage-stats", env=self.env)

    def add_node(self) -> subprocess.CompletedProcess:
        return _ray("start", f"--address={self.address}", "--node-ip-address=127.0.0.1",
                    "--num-cpus=1", env=self.env)

    def processes(self) -> list:
        """Processes whose command line names this cluster's port or temp
        folder (GCS, raylets, monitors), and all their descendants (workers)."""
        import psutil

        mark = re.compile(rf"(:|port=){self.port}\b|{re.escape(self.temp_dir)}")
        found: dict[int, psutil.Process] = {}
        for proc in psutil.process_iter():
            try:
                if mark.search(" ".join(proc.cmdline())):
                    found[proc.pid] = proc
                    for child in proc.children(recursive=True):
                        found[child.pid] = child
            except psutil.Error:
                continue
        found.pop(os.getpid(), None)
        return list(found.values())

    def stop(self) -> None:
        import psutil

        procs = self.processes()
        for proc in procs:
            try:
                proc.terminate()
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(procs, timeout=15)
        for proc in alive:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=10)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _env() -> dict:
    # The nodes and the driver must agree on authentication; loopback only.
    return {**os.environ, "RAY_AUTH_MODE": "disabled"}


@pytest.mark.slow
def test_teardown_stops_only_its_own_cluster():
    pytest.importorskip("ray")
    ours, bystander = Cluster(_env()), Cluster(_env())
    try:
        assert bystander.start_head().returncode == 0
        assert ours.start_head().returncode == 0
        assert ours.processes() and bystander.processes()
        ours.stop()
        assert ours.processes() == []
        assert all(p.is_running() for p in bystander.processes())
        alive = subprocess.run(
            [sys.executable, "-c", f"import ray; ray.init(address='{bystander.address}'); "
             "print(sum(n['Alive'] for n in ray.nodes()))"],
            capture_output=True, text=True, env=_env(), timeout=120)
        assert alive.stdout.strip().splitlines()[-1] == "1", alive.stderr[-2000:]
    finally:
        ours.stop()
        bystander.stop()


@pytest.mark.slow
def test_two_node_cluster_training_iteration(tmp_path):
    pytest.importorskip("ray")
    env = _env()
    cluster = Cluster(env)
    try:
        head = cluster.start_head()
        assert head.returncode == 0, head.stderr
        worker = cluster.add_node()
        assert worker.returncode == 0, worker.stderr
        nodes = subprocess.run(
            [sys.executable, "-c",
             f"import ray; ray.init(address='{cluster.address}'); "
             "print(sum(n['Alive'] for n in ray.nodes()))"],
            capture_output=True, text=True, env=env, timeout=120)
        assert nodes.stdout.strip().splitlines()[-1] == "2", nodes.stderr
        out = tmp_path / "run"
        proc = subprocess.run(
            [sys.executable, os.path.join(ROOT, "scripts", "train.py"),
             f"--ray_address={cluster.address}", "--preset=fast", "--num_iterations=1",
             "--episode_length=100", "--tax_period=25", "--train_batch_size=104",
             "--rollout_fragment_length=104", "--minibatch_size=52",
             "--num_env_runners=1", f"--output_dir={out}"],
            capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        records = [json.loads(line) for line in open(out / "progress.jsonl")]
        assert records[-1]["iteration"] == 1 and records[-1]["env_steps_this_iter"] >= 104
    finally:
        cluster.stop()
