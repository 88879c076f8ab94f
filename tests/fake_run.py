"""A run folder as `scripts/train.py` leaves it, made without Ray or training.

The modules are freshly initialised (untrained) but saved exactly where and
how the trainer's checkpoints hold them, with the run's `run_config.json`, so
that the scripts' checks of `--checkpoint`/`--restore` and the module loading
run for real on it (tests of inputs and of the README's commands).
"""

from __future__ import annotations

import dataclasses
import json
import os

from sed_meltingpot.core import rewards
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.runs.runlog import CHECKPOINT_DIR, RUN_CONFIG_FILE
from sed_meltingpot.runs.train_config import TrainConfig
from sed_meltingpot.training.rllib.rllib_config import build_ppo_config, env_config
from sed_meltingpot.training.rllib.trainer import MODULE_PATH


def make_run(run_dir: str, game: GameConfig | None = None, train: TrainConfig | None = None
             ) -> str:
    """Writes run_dir/run_config.json and run_dir/checkpoints/iter_000001;
    returns the checkpoint's path."""
    from sed_meltingpot.envs.rllib_env import SEDMultiAgentEnv, policy_mapping_fn

    game = game or GameConfig()
    train = train or TrainConfig()
    selfishness = tuple(float(s) for s in rewards.sample_selfishness(game.num_players,
                                                                    train.seed))
    config = build_ppo_config(game, train, selfishness=selfishness)
    env = SEDMultiAgentEnv(env_config(game, train, selfishness=selfishness))
    try:
        spec = config.get_multi_rl_module_spec(spaces={
            policy_mapping_fn(agent): (env.observation_spaces[agent], env.action_spaces[agent])
            for agent in env.possible_agents})
    finally:
        env.close()
    checkpoint = os.path.join(run_dir, CHECKPOINT_DIR, "iter_000001")
    spec.build().save_to_path(os.path.join(checkpoint, MODULE_PATH))
    with open(os.path.join(checkpoint, "rllib_checkpoint.json"), "w") as f:
        json.dump({"type": "Algorithm", "note": "made by tests/fake_run.py"}, f)
    # The file RLlib writes last, which marks the checkpoint complete (an empty pickled
    # dict: nothing restores the algorithm from a fake run).
    with open(os.path.join(checkpoint, "algorithm_state.pkl"), "wb") as f:
        f.write(b"\x80\x04}\x94.")

    def plain(value):
        if isinstance(value, float) and value != value or value in (float("inf"),):
            return None
        return value

    settings = {"game": {k: plain(v) for k, v in dataclasses.asdict(game).items()},
                "train": dataclasses.asdict(train), "selfishness": list(selfishness)}
    with open(os.path.join(run_dir, RUN_CONFIG_FILE), "w") as f:
        json.dump(settings, f, indent=2)
    return checkpoint
