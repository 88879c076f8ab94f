"""A plain (non-editable) install trains from the repository root (issue 11,
section 1).

Two faults met a user who ran `pip install .` and then trained from the
checkout: Ray's env runners start in the driver's working directory and
imported the checkout's `sed_meltingpot/`, which has no `lua`/`substrates`
subpackages there ("cannot import name 'lua' from 'sed_meltingpot'"); and
pip resolved torch 2.14 (CUDA build, with Triton), whose Triton import after
TensorFlow (`import meltingpot`) segfaults when the optimizer is made
(exit 139). This test installs the project into a fresh venv (no system site
packages; pip's cache is reused) with `scripts/setup_env.sh` in its
non-editable mode, letting pip choose torch within setup.py's range, and
trains one tiny iteration with one env runner from the repository root.
It takes minutes (and a few GB of wheels on the first run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What `pip install .` resolves for torch: the newest release setup.py allows.
TORCH_SPEC = os.environ.get("SED_INSTALL_TEST_TORCH", "torch>=2.4,<2.15")


def _copy_source(dest: str) -> None:
    """The project's files without local state, so that pip's in-tree build
    (build/, *.egg-info) writes nothing into the checkout."""
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(
        ".venv", ".git", "outputs", "build", "dist", "*.egg-info", "__pycache__",
        ".pytest_cache", ".ruff_cache", ".hypothesis"))


@pytest.mark.slow
def test_plain_install_trains_one_iteration_from_the_repository_root(tmp_path):
    source, venv, run = tmp_path / "src", tmp_path / "venv", tmp_path / "run"
    _copy_source(str(source))
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update({"VENV": str(venv), "EDITABLE": "0", "TORCH_SPEC": TORCH_SPEC})
    setup = subprocess.run(["bash", str(source / "scripts" / "setup_env.sh"), ""],
                           env=env, capture_output=True, text=True, timeout=3600)
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    python = str(venv / "bin" / "python")
    where = subprocess.run(
        [python, "-c", "import importlib.metadata as m, sed_meltingpot, torch; "
         "print(sed_meltingpot.__file__, torch.__version__, "
         "m.distribution('sed-meltingpot').read_text('direct_url.json'))"],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert where.returncode == 0, where.stderr[-3000:]
    assert "site-packages" in where.stdout  # a copy, not the checkout
    assert '"editable": true' not in where.stdout
    train = subprocess.run(
        [python, "scripts/train.py", "--preset=fast", "--num_iterations=1",
         "--episode_length=100", "--tax_period=50", "--rollout_fragment_length=104",
         "--train_batch_size=208", "--minibatch_size=64", "--principal_minibatch_size=2",
         "--num_env_runners=1", f"--output_dir={run}", "--checkpoint_every=0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    log = (train.stdout + train.stderr)[-6000:]
    assert train.returncode == 0, f"exit {train.returncode} ({where.stdout.strip()}):\n{log}"
    assert "cannot import name" not in log
    records = [json.loads(line) for line in open(run / "progress.jsonl")]
    assert [r["iteration"] for r in records] == [1]
    assert records[0]["env_steps_this_iter"] >= 208
