"""Whole training runs on a tiny game: brackets, stale episode figures,
losses, the env adapters' episode end and sub-env order, SIGTERM and resume,
and a crashed env runner.

Tiny on purpose (100-step episodes, tax period 50, 1 pixel per tile): each
episode is 102 RLlib env steps (100 game steps + 2 principal turns), so with
52-step iterations the first iteration ends no episode, the second ends one
and the third none.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch  # noqa: E402

from sed_meltingpot.envs.pettingzoo_env import SEDParallelEnv  # noqa: E402
from sed_meltingpot.envs.rllib_env import PLAYERS_MODULE, PRINCIPAL, SEDMultiAgentEnv  # noqa: E402
from sed_meltingpot.game.config import GameConfig  # noqa: E402
from sed_meltingpot.runs import runlog  # noqa: E402
from sed_meltingpot.runs.train_config import TrainConfig, preset  # noqa: E402
from sed_meltingpot.training.rllib.callbacks import sed_envs  # noqa: E402
from sed_meltingpot.training.rllib.learner import LOSS_MASK, PerModuleMinibatchIterator  # noqa: E402
from sed_meltingpot.training.rllib.rllib_config import build_ppo_config  # noqa: E402
from sed_meltingpot.training.rllib.trainer import train  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GAME = GameConfig(episode_length=100, tax_period=50)
TINY = TrainConfig(num_iterations=3, train_batch_size=52, rollout_fragment_length=52,
                   num_env_runners=0, **{**preset("fast"), "minibatch_size": 26},
                   principal_minibatch_size=2)
BRACKETS = {2: (0, 10, 10000), 4: (0, 5, 10, 20, 10000)}


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    ray.init(address="local", num_cpus=3, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


# ------------------------------------------------------------- minibatches
def iterate(batch: MultiAgentBatch, sizes: dict[str, int], epochs: int = 2):
    iterator = PerModuleMinibatchIterator(batch, num_epochs=epochs, default_minibatch_size=4,
                                          minibatch_sizes=sizes, seed=0)
    return list(iterator), iterator


def test_leftover_rows_join_the_last_minibatch_of_each_epoch():
    players = SampleBatch({"obs": np.arange(10.0)})  # size 4: chunks 4 and 4 + 2 leftover
    batch = MultiAgentBatch({PLAYERS_MODULE: players}, 10)
    minibatches, iterator = iterate(batch, {})
    sizes = [len(m.policy_batches[PLAYERS_MODULE]) for m in minibatches]
    assert sizes == [4, 6, 4, 6]
    np.testing.assert_array_equal(iterator.usage[PLAYERS_MODULE], np.full(10, 2))


def test_rows_masked_out_of_the_loss_never_form_a_minibatch():
    # The principal's 5 rows: 2 real decisions and 3 bootstrap rows that RLlib
    # masks out of the loss; alone, a chunk of masked rows gives a NaN loss.
    mask = np.array([True, False, True, False, False])
    principal = SampleBatch({"obs": np.arange(5.0), LOSS_MASK: mask})
    players = SampleBatch({"obs": np.arange(8.0), LOSS_MASK: np.ones(8, bool)})
    batch = MultiAgentBatch({PLAYERS_MODULE: players, PRINCIPAL: principal}, 8)
    minibatches, iterator = iterate(batch, {PRINCIPAL: 2}, epochs=3)
    chunks = [m.policy_batches[PRINCIPAL] for m in minibatches if PRINCIPAL in m.policy_batches]
    assert len(chunks) == 3  # one full chunk of the 2 real rows per epoch
    for chunk in chunks:
        assert chunk[LOSS_MASK].all() and sorted(chunk["obs"]) == [0.0, 2.0]
    np.testing.assert_array_equal(iterator.usage[PRINCIPAL], [3, 0, 3, 0, 0])
    # A module whose rows are all masked sits the update out.
    empty = SampleBatch({"obs": np.arange(3.0), LOSS_MASK: np.zeros(3, bool)})
    minibatches, _ = iterate(MultiAgentBatch({PRINCIPAL: empty}, 3), {PRINCIPAL: 2})
    assert minibatches == []


# ------------------------------------------------------------- whole runs
@pytest.fixture(scope="module")
def bracket_runs(tmp_path_factory):
    """{brackets: (records, summary, printed lines)} of a 3-iteration run."""
    runs = {}
    for count, thresholds in BRACKETS.items():
        out = str(tmp_path_factory.mktemp(f"brackets{count}") / "run")
        printed: list[str] = []
        game = GameConfig(episode_length=100, tax_period=50, thresholds=thresholds)
        summary = train(game, TINY, out, checkpoint_every=0, print_fn=printed.append)
        records = runlog.read_progress(out)
        with open(os.path.join(out, runlog.SUMMARY_FILE)) as f:
            assert json.load(f) == json.loads(json.dumps(runlog.clean(summary)))
        runs[count] = (records, summary, printed)
    return runs


@pytest.mark.parametrize("count", sorted(BRACKETS))
def test_every_bracket_reaches_log_summary_and_progress_line(bracket_runs, count):
    records, summary, printed = bracket_runs[count]
    fresh = records[1]  # iteration 2 ended an episode
    assert fresh["episodes_this_iter"] == 1 and not fresh["metrics_stale"]
    rates = [fresh[f"rate_b{b}"] for b in range(count)]
    assert all(0.0 <= r <= 1.0 for r in rates)
    assert f"rate_b{count}" not in fresh
    assert all(len(p) == count for p in fresh["last_episode_period_rates"])
    assert [summary[f"rate_b{b}"] for b in range(count)] == rates  # carried to the end
    line = next(p for p in printed if p.startswith("iter    2"))
    assert "rates " + "/".join(f"{r:.2f}" for r in rates) + " |" in line
    text = next(p for p in printed if p.startswith("=== summary ==="))
    assert ", ".join(f"{r:.3f}" for r in rates) + "\n" in text
    assert summary["num_brackets"] == count


def test_summary_is_not_empty_when_the_last_iteration_ended_no_episode(bracket_runs):
    records, summary, _ = bracket_runs[2]
    assert [r["episodes_this_iter"] for r in records] == [0, 1, 0]
    assert [r["metrics_stale"] for r in records] == [True, False, True]
    assert records[2]["metrics_iteration"] == 2
    for key in ("objective", "eta", "productivity", "rate_b0", "principal_return"):
        assert records[2][key] == records[1][key] and records[1][key] is not None, key
        assert summary[key] == records[1][key], key
    assert summary["metrics_stale"] and summary["metrics_iteration"] == 2


def test_both_modules_losses_are_logged(bracket_runs):
    records, _, _ = bracket_runs[2]
    for record in records:
        for module_id in (PRINCIPAL, PLAYERS_MODULE):
            for key in ("total_loss", "policy_loss", "vf_loss"):
                value = record.get(f"{key}_{module_id}")
                assert isinstance(value, float) and math.isfinite(value), (key, module_id)


# ------------------------------------------------------ env adapters
def test_sub_envs_keep_the_vector_envs_order():
    config = TrainConfig(**{**TINY.__dict__, "num_envs_per_env_runner": 3,
                            "train_batch_size": 156})
    algo = build_ppo_config(GAME, config, selfishness=(0.5,) * 7).build_algo()
    try:
        vector = algo.env_runner.env
        assert len(vector.envs) == 3
        assert sed_envs(vector) == [e.unwrapped for e in vector.envs]
    finally:
        algo.stop()


def test_episode_end_is_truncated_in_both_adapters():
    algo = build_ppo_config(GAME, TINY, selfishness=(0.5,) * 7).build_algo()
    try:
        episodes = algo.env_runner.sample(num_episodes=1)
        done = [e for e in episodes if e.is_done]
        # GAE reads each agent's episode (RLlib's multi-agent episode calls
        # itself terminated once every agent is done, whichever way).
        agents = [a for e in done for a in e.agent_episodes.values()]
        assert len(agents) == 8 * len(done) > 0
        assert all(a.is_truncated and not a.is_terminated for a in agents)
    finally:
        algo.stop()
    env = SEDMultiAgentEnv({"game": {"episode_length": 100, "tax_period": 50},
                            "pixels_per_tile": 1})
    env.reset()
    terminated = truncated = {"__all__": False}
    while not (terminated["__all__"] or truncated["__all__"]):
        agents = [PRINCIPAL] if env.game.principal_due else env.players
        actions = {a: env.action_spaces[a].sample() for a in agents}
        _, _, terminated, truncated, _ = env.step(actions)
    assert truncated == {"__all__": True} and terminated == {"__all__": False}
    env.close()
    pz = SEDParallelEnv(GameConfig(episode_length=100, tax_period=50))
    pz.reset()
    for _ in range(100):
        _, _, terminations, truncations, _ = pz.step({a: 0 for a in pz.agents})
    assert all(truncations.values()) and not any(terminations.values())
    pz.close()


def test_sed_envs_walks_nested_wrappers_in_order():
    class Wrapper:
        def __init__(self, env):
            self.env = env
            self.unwrapped = env

    class Vector:
        def __init__(self, envs):
            self.envs = envs
            self.unwrapped = self

    inner = [SEDMultiAgentEnv.__new__(SEDMultiAgentEnv) for _ in range(3)]
    vector = Vector([Wrapper(Wrapper(e)) for e in inner])
    assert sed_envs(vector) == inner


# ------------------------------------------------------ signals and resume
TINY_FLAGS = ("--preset=fast", "--episode_length=100", "--tax_period=50",
              "--num_env_runners=0", "--train_batch_size=52", "--rollout_fragment_length=52",
              "--minibatch_size=26", "--principal_minibatch_size=2", "--checkpoint_every=2")


def train_script(*args: str) -> list[str]:
    return [sys.executable, os.path.join(ROOT, "scripts", "train.py"), *TINY_FLAGS, *args]


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_restore_continues_the_log(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(train_script(f"--output_dir={out}", "--num_iterations=50"),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    try:
        deadline = time.time() + 400
        for line in proc.stdout:
            if line.startswith("iter    3") or time.time() > deadline:
                break
        proc.send_signal(signal.SIGTERM)
        rest = proc.stdout.read()
        code = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 128 + signal.SIGTERM, rest[-2000:]
    records = runlog.read_progress(str(out))
    last = records[-1]["iteration"]
    assert [r["iteration"] for r in records] == list(range(1, last + 1)) and last >= 3
    checkpoints = sorted(os.listdir(out / "checkpoints"))
    assert checkpoints[-1] == f"iter_{last:06d}", checkpoints  # nothing lost
    summary = json.loads((out / runlog.SUMMARY_FILE).read_text())
    assert summary["stopped_by"] == "SIGTERM" and summary["iteration"] == last

    # Resume from iteration 2: the lines after it are replaced, not repeated.
    resumed = subprocess.run(
        train_script(f"--output_dir={out}", f"--restore={out / 'checkpoints' / 'iter_000002'}",
                     f"--num_iterations={last + 1}"),
        capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    records = runlog.read_progress(str(out))
    assert [r["iteration"] for r in records] == list(range(1, last + 2))
    before, first = records[1], records[2]
    assert first["wall_time_s"] > before["wall_time_s"]  # continues, does not restart at 0
    # Throughput of the first resumed line: the steps since the resume over
    # the time since the resume, both read off the log.
    steps = first["game_steps"] - before["game_steps"]
    assert 0 < steps <= 52
    assert first["game_steps_per_s"] == pytest.approx(
        steps / (first["wall_time_s"] - before["wall_time_s"]), rel=1e-6)


# ------------------------------------------------------ fault tolerance
def env_runner_pids() -> list[int]:
    """Env-runner actor processes under this test process's own Ray."""
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "EnvRunner" in " ".join(child.cmdline()) or "EnvRunner" in child.name():
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


@pytest.mark.slow
@pytest.mark.parametrize("runners", [2, 1])
def test_a_killed_env_runner_does_not_end_the_run(tmp_path, runners):
    config = TrainConfig(**{**TINY.__dict__, "num_iterations": 4, "num_env_runners": runners,
                            "train_batch_size": 52 * runners})
    killed: list[int] = []

    def kill_one(record):
        if record["iteration"] == 1:
            pids = env_runner_pids()
            assert pids, "no env-runner process found"
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    out = str(tmp_path / "run")
    summary = train(GAME, config, out, checkpoint_every=0, on_iteration=kill_one,
                    print_fn=lambda s: None)
    assert killed
    records = runlog.read_progress(out)
    iterations = [r["iteration"] for r in records]
    if runners == 2:  # the other runner samples the whole batch meanwhile
        assert iterations == [1, 2, 3, 4]
    else:  # the iteration in which the only runner died sampled nothing: not logged
        assert iterations[0] == 1 and iterations[-1] == 4 and len(iterations) >= 3
        assert iterations == sorted(set(iterations))
    assert all(r["env_steps_this_iter"] > 0 for r in records)
    assert summary["iteration"] == 4
    assert killed[0] not in env_runner_pids()
