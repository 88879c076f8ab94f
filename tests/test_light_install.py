"""The light install works on its own (issue 18, item 4).

A fresh venv (no system site packages) gets the base install plus the jaxmarl extra
(`pip install '<copy of the repository>[jaxmarl]'`, reusing pip's cache) and nothing of
the Lua substrate or RLlib. In it: TensorFlow, Ray, torch, dmlab2d and Melting Pot are
not importable; `train.py --engine=jax` trains two iterations; the jax part of the smoke
grid (`experiment.py --grid=smoke --engine=jax`, one objective, the learned principal
and no tax, one seed) trains and evaluates, skipping the Lua transfer rows; the JaxMARL
env steps under LogWrapper and jit(vmap); and an import of a Lua or RLlib module fails
with the one-line message naming its extra. It prints the venv's size (`du -sh`) next
to the full `.venv`'s (README, "Light install"). It needs the package index and skips
with a message saying so without it. Minutes, and about 1 GB of wheels on a cold cache.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap

import pytest
from test_install import _copy_source

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ABSENT = ("tensorflow", "ray", "torch", "dmlab2d", "meltingpot")


def _run(args: list[str], *, env: dict[str, str], cwd: str, timeout: int
         ) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def _du(path: str) -> str:
    return subprocess.run(["du", "-sh", path], capture_output=True, text=True,
                          check=True).stdout.split()[0]


@pytest.mark.slow
def test_base_install_trains_the_twin_runs_the_smoke_grid_and_steps_jaxmarl(tmp_path):
    source, venv = tmp_path / "src", tmp_path / "venv"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PIP_NO_CACHE_DIR")}
    probe = _run([sys.executable, "-m", "pip", "download", "--no-deps", "--dest",
                  str(tmp_path / "probe"), "absl-py"], env=env, cwd=str(tmp_path), timeout=300)
    if probe.returncode != 0:
        pytest.skip("the light-install test needs the package index, which pip could not "
                    f"reach: {(probe.stderr or probe.stdout).strip().splitlines()[-1:]}")
    _copy_source(str(source))
    made = _run([sys.executable, "-m", "venv", str(venv)], env=env, cwd=str(tmp_path),
                timeout=300)
    assert made.returncode == 0, made.stderr[-3000:]
    python = str(venv / "bin" / "python")
    install = _run([python, "-m", "pip", "install", f"{source}[jaxmarl]"], env=env,
                   cwd=str(tmp_path), timeout=3600)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    # Nothing of the Lua substrate or RLlib, and the package is the installed copy.
    check = _run([python, "-c", textwrap.dedent(f"""
        import importlib.util, json, sed_meltingpot
        print(json.dumps({{"present": [m for m in {ABSENT!r}
                                        if importlib.util.find_spec(m) is not None],
                           "file": sed_meltingpot.__file__}}))
    """)], env=env, cwd=str(tmp_path), timeout=300)
    assert check.returncode == 0, check.stderr[-3000:]
    found = json.loads(check.stdout.strip().splitlines()[-1])
    assert found["present"] == [] and "site-packages" in found["file"], found

    run = tmp_path / "run"
    train = _run([python, str(source / "scripts" / "train.py"), "--engine=jax",
                  "--preset=fast", "--num_iterations=2", "--num_players=3",
                  "--episode_length=50", "--tax_period=25", "--rollout_fragment_length=50",
                  "--num_envs=2", "--frame_stack=1", "--checkpoint_every=0",
                  f"--output_dir={run}"], env=env, cwd=str(tmp_path), timeout=1800)
    assert train.returncode == 0, (train.stdout + train.stderr)[-6000:]
    records = [json.loads(line) for line in open(run / "progress.jsonl")]
    assert [r["iteration"] for r in records] == [1, 2]
    assert os.path.exists(run / "summary.json")

    grid = tmp_path / "grid"
    smoke = _run([python, str(source / "scripts" / "experiment.py"), "--grid=smoke",
                  "--engine=jax", "--objectives=voted", "--principals=learned,none",
                  "--seeds=0", "--welfare_on=apples", "--num_iterations=1",
                  "--eval_episodes=1", f"--output_dir={grid}"],
                 env=env, cwd=str(tmp_path), timeout=3600)
    log = (smoke.stdout + smoke.stderr)[-6000:]
    assert smoke.returncode == 0, log
    rows = list(csv.DictReader(open(grid / "results.csv")))
    assert {(r["principal"], r["substrate"]) for r in rows} >= {("learned", "twin"),
                                                                ("none", "twin")}, rows
    assert all(r["substrate"] != "lua" for r in rows)  # no Lua here: those rows are left out
    assert "no Lua evaluation" in log

    jaxmarl = _run([python, "-c", textwrap.dedent("""
        import importlib, jax, jax.numpy as jnp
        from jaxmarl.wrappers.baselines import LogWrapper
        from sed_meltingpot.twin.jaxmarl_env import SEDJaxMARLEnv
        env = LogWrapper(SEDJaxMARLEnv(num_players=3, episode_length=50, tax_period=25))
        keys = jax.random.split(jax.random.PRNGKey(0), 2)
        obs, state = jax.jit(jax.vmap(env.reset))(keys)
        actions = {a: jnp.zeros((2,) + env.action_space(a).shape, jnp.int32)
                   for a in env.agents}
        step = jax.jit(jax.vmap(env.step))
        for _ in range(3):
            obs, state, reward, done, info = step(keys, state, actions)
        print("steps", int(state.env_state.step[0]))
        for module in ("sed_meltingpot.game.substrate", "sed_meltingpot.training.rllib.modules"):
            try:
                importlib.import_module(module)
            except ImportError as e:
                print("error", type(e).__name__, e)
    """)], env=env, cwd=str(tmp_path), timeout=1800)
    assert jaxmarl.returncode == 0, jaxmarl.stderr[-3000:]
    assert "steps 3" in jaxmarl.stdout
    errors = [line for line in jaxmarl.stdout.splitlines() if line.startswith("error")]
    assert len(errors) == 2, jaxmarl.stdout
    assert "MissingExtra sed_meltingpot.game.substrate needs the 'lua' extra" in errors[0]
    assert "MissingExtra sed_meltingpot.training.rllib.modules needs the 'rllib' extra" in errors[1]

    full = os.path.join(ROOT, ".venv")
    print(f"\nlight venv (base + jaxmarl): {_du(str(venv))}"
          + (f"; full .venv: {_du(full)}" if os.path.isdir(full) else ""))
